"""How tensorflow_model_server is started: its ports, the flags that say what it loads, the official image's
entrypoint, and the policy TF Serving applies to version directories it finds."""

from __future__ import annotations

GRPC_PORT = 8500
REST_PORT = 8501
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
MODEL_SERVER = "tensorflow_model_server"
MODEL_SERVER_PATH = "/usr/bin/tensorflow_model_server"
# The official image's entrypoint runs `tensorflow_model_server --port=8500 --rest_api_port=8501
# --model_name=${MODEL_NAME} --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME} "$@"`.
ENTRYPOINT = "tf_serving_entrypoint.sh"
ENTRYPOINT_DEFAULTS = {"MODEL_NAME": "model", "MODEL_BASE_PATH": "/models"}


class Flag:
    """The flags that decide which models are loaded from where."""

    MODEL_NAME = "model_name"
    MODEL_BASE_PATH = "model_base_path"
    MODEL_CONFIG_FILE = "model_config_file"
    POLL_WAIT_SECONDS = "file_system_poll_wait_seconds"


MODEL_FLAGS = (Flag.MODEL_NAME, Flag.MODEL_BASE_PATH, Flag.MODEL_CONFIG_FILE)
