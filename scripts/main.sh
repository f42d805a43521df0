#!/usr/bin/env bash
# The main job: the demo study on the built-in shapes world (build the world, pre-train SimCLR, MoCo v2 and
# SwAV on three corpora plus the supervised and random baselines, run the grid over every built-in task,
# write the report). Resumable: a rerun reuses finished runs and cells. Extra arguments go to
# `contrasting demo` (e.g. --full, --out DIR).
source "$(dirname "$0")/env.sh"
contrasting demo "$@"
