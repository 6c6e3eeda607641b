"""FMN Studio's headless core: media I/O, the cooking corpus, the Feature Memory Network,
training, evaluation, the library index and search. Never imports Qt."""

__version__ = "0.1.0"
