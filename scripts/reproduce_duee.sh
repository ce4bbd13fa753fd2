#!/usr/bin/env bash
# The DuEE reproduction command from before tasks existed: `scripts/reproduce.sh duee ARGS`
# (same arguments, same outputs; see scripts/reproduce.sh).
exec bash "$(dirname "$0")/reproduce.sh" --dataset duee "$@"
