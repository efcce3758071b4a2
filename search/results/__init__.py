"""What a search gives: console tables (which parameters varied: ``varied``), the commands
that follow a run (``next_steps``), exported and confirmed configs, the model card and its
validation-to-test gap (``gap``), the report and per-trial artifacts."""
