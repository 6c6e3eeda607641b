"""Training: data loading, stage 1 (the compact I3D on video labels), stage 2 (the FMN)."""
