"""Command-line entry points: ``python train.py`` and the ``lightning-meta`` console command."""
