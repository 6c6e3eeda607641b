"""The built-in cooking corpus: vocabulary, procedural videos, synthetic speech, generation."""
