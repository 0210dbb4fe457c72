"""Config layer: experiment and study configs, YAML loading, sweep expansion, config hash."""
