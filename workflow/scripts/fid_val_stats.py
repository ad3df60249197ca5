"""Rule fid_val_stats: FID reference statistics of the validation image folder.

Offline without Inception's weights (and evaluate.require_external_metrics false), the file says
why the statistics are unavailable; evaluation then reports FID unavailable with that reason.
"""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake) as log:
    from i2sb.downloads import DownloadError
    from i2sb.metrics.fid import write_unavailable_stats
    from i2sb.metrics.fid_reference import folder_reference_stats
    from i2sb.metrics.weights import WeightsUnavailable
    from i2sb.planning import read_slice

    cfg = read_slice(snakemake.input.config)
    folder, out = f"{cfg.data.root}/val", snakemake.output.stats
    try:
        folder_reference_stats(folder, out, cfg.data.image_size, cfg.evaluate.batch_size)
    except (WeightsUnavailable, DownloadError) as err:
        if cfg.evaluate.require_external_metrics:
            raise RuntimeError(
                f"FID statistics of {folder} cannot be computed and external metrics are "
                f"required (evaluate.require_external_metrics): {err}"
            ) from None
        log.warning("FID statistics of %s unavailable: %s", folder, err)
        write_unavailable_stats(out, f"FID statistics of {folder} unavailable: {err}")
