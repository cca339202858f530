"""Exporting trained runs to inference engines: `python -m research.export ctranslate2 run_dir=... out=DIR`."""
