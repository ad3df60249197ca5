"""`i2sb slurm-profile`: install the merged Slurm profile so `snakemake --profile slurm` works."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "slurm-profile",
        help="install the Slurm profile (ours + your account/partition) for `snakemake --profile slurm`",
        description=(
            "Merge the pipeline's Slurm profile (--base) with your site's settings and write it where "
            "Snakemake looks for a profile by name ($XDG_CONFIG_HOME/snakemake/NAME, by default "
            "~/.config/snakemake/slurm). Then, from the repository: "
            "`snakemake --profile slurm --configfile config/benchmark.yaml`. "
            "An existing, different profile file is kept: the command stops naming it, and with "
            "--force it is copied to config.yaml.bak-<UTC time> beside it before being replaced."
        ),
    )
    parser.add_argument("--account", required=True, help="Slurm account of every job (sbatch -A)")
    parser.add_argument(
        "--partition",
        required=True,
        help="Slurm partition of the jobs that use GPUs (sbatch -p), and of every job unless "
        "--cpu-partition names another",
    )
    parser.add_argument(
        "--cpu-partition",
        metavar="PARTITION",
        help="Slurm partition of the jobs that use no GPU (LMDB conversion, gather, every job of a CPU "
        "config); the plugin picks it for each job from what the job asks for",
    )
    parser.add_argument(
        "--gpus-per-node",
        type=int,
        default=8,
        metavar="N",
        help="GPUs per node in the --partition partition (default: %(default)s); a job asking for more per "
        "node fits no partition",
    )
    parser.add_argument("--qos", help="Slurm quality of service of every job (sbatch --qos)")
    parser.add_argument(
        "--overlay",
        metavar="DIR",
        help="a profile folder with more site settings (its config.yaml is merged in, key by key), "
        "e.g. `slurm-status-command: squeue` on a cluster without accounting",
    )
    parser.add_argument(
        "--base",
        default="profiles/slurm",
        metavar="DIR",
        help="the pipeline's profile folder (default: %(default)s, relative to the repository)",
    )
    parser.add_argument(
        "--name",
        default="slurm",
        help="profile name for `snakemake --profile NAME`: a folder name, never a path "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing, different profile file (a timestamped backup is kept beside it)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="write the profile folder here instead of Snakemake's user config folder",
    )
    parser.set_defaults(handler=run)


def run(args) -> int:
    from i2sb.slurm_profile import check_profile_name, install_profile, user_profile_dir

    check_profile_name(args.name)
    out = args.out or user_profile_dir(args.name)
    done = install_profile(args.base, args.account, args.partition, args.qos, args.overlay, out,
                           args.force, args.cpu_partition, args.gpus_per_node)  # fmt: skip
    if done.backup:
        print(f"kept your previous profile as {done.backup}")
    usage = f"--profile {args.name}" if not args.out else f"--profile {out}"
    state = "wrote" if done.changed else "already up to date:"
    print(f"{state} {done.path}; run: snakemake {usage} --configfile config/benchmark.yaml")
    return 0
