"""Study presets as TOML files; read them with ``search.preset.load(name)``."""
