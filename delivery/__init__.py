"""Model delivery: getting versions into S3 and out of it without TF Serving ever seeing half of one.

- `publish`: a local SavedModel → a new version directory in S3 (staged, then copied with saved_model.pb
  last, checked, verified).
- `sync`: the versions a policy selects, S3 → a local directory TF Serving reads (staged in a hidden
  directory, checked, fsynced, renamed into place); also the `watch` loop that only checks what TF Serving
  will load next from S3.
- `transfer`: parallel, bounded-memory object transfers over `savedmodel.storage.S3Store`.

No click and no printing here: progress goes to callbacks. See docs/delivery.md.
"""
