"""The TF Serving rulebook: what the generator, the webhook and the CLI must agree on, stated once.

No Flask, click or boto3 here (a test checks it); each side words its own messages from these facts.

- `images`: image references (Docker Hub spellings, GPU variant, whether an image can read s3://)
- `policy`: the version policy and which version directories TF Serving sees and loads
- `modelconfig`: the ModelServerConfig text proto (render and parse)
- `labels`: when version labels are accepted
- `s3`: s3:// paths, bucket names, S3_ENDPOINT/S3_USE_HTTPS and endpoints never contacted
- `server`: tensorflow_model_server's ports, flags and the official entrypoint
- `sync`: the sync container's command line (storage.mode: sync)
- `names`: the webhook's name, ports, paths and WEBHOOK_* variables, the GPU resource name, model metrics
"""
