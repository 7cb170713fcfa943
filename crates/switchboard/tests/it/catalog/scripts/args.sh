#!/bin/sh
for arg in "$@"; do printf 'arg:%s\n' "$arg"; done
printf 'env:%s\n' "$SB_PARAM_TEXT"
