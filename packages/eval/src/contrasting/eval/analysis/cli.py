"""``contrasting report``'s arguments (argparse only: the command line parses them before importing the
analysis). Every option is checked here: the source is a file that exists, ``--out`` a folder that can be
written into, ``--compare`` a file or folder that exists, ``--bootstrap`` an integer >= 0."""

from __future__ import annotations

import argparse

from contrasting.encoders.cli.args import existing_file, existing_path, hash_prefix, nonnegative_int, output_dir


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``contrasting report``'s arguments to ``parser``."""
    parser.add_argument("source", type=existing_file,
                        help="results store (.sqlite), a grid spec (its store) or a results CSV")
    parser.add_argument("--out", type=output_dir, help="output folder (default: <source>-report beside the source)")
    parser.add_argument("--reference", help="reference task (default: the spec's, else the task marked reference, "
                                            "else imagenet)")
    parser.add_argument("--spec-hash", type=hash_prefix,
                        help="the grid to report on (prefix; default: the latest registered)")
    parser.add_argument("--title", help="report title")
    parser.add_argument("--bootstrap", type=nonnegative_int, default=None,
                        help="bootstrap replicates (default: the analysis's, "
                             "contrasting.eval.analysis.claims.REPLICATES; 0: no intervals, every verdict "
                             "inconclusive)")
    parser.add_argument("--compare", type=existing_path, default=None,
                        help="another report's folder or findings.json (e.g. the same study under another seed): "
                             "the report names the conclusive verdicts that differ")
    return parser
