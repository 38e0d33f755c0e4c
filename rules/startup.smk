# Start-up: what runs when the Snakefile is parsed, before the other rule files.
# - config.yaml's top level and the local dataset paths are validated (scalegmn.config);
from scalegmn.config import check_local_paths, check_top_level_keys
from scalegmn.errors import ConfigError

try:
    check_top_level_keys(config)
    check_local_paths(config)
except ConfigError as err:
    raise WorkflowError(f"config.yaml: {err}") from None
