"""Sampling: partitioned evaluation runs, gathering their parts, restoring a user's images.

- ``options``: SamplingOptions, one typed view of our options.json and the published options.pkl
- ``sampler``: a trained run ready to restore batches (EMA weights, precision, seeding, timing)
- ``partitioned``: ``sample_partition`` writes one part file of an evaluation set
- ``evalset``: ``sample_run_partition`` (the CLI and the workflow) finds the run's evaluation set first
- ``parts`` / ``gather``: the part-file format and ``gather_parts``
- ``restore``: ``restore_images`` for image files
- ``preview``: ``corrupt_files``, a task's degradation of image files (``i2sb corrupt``)
- ``images``: uint8 conversion, PNG, trajectory strips and GIFs
"""
