"""Front ends: media files to the tensors the models take (sampled clips, MFCC sequences)."""
