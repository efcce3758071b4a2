"""What a search gives: console tables, exported and confirmed configs, the model card, the
report and per-trial artifacts."""
