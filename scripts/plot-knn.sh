#!/usr/bin/env bash
# kNN accuracy against training time, from a metrics CSV written with eval.every (the kNN
# monitor) and metrics.file:  scripts/plot-knn.sh METRICS.csv OUT.png [TITLE]
# Needs gnuplot (Debian: gnuplot-nox). Rows without a kNN value are skipped; the loss, averaged
# over 50 steps, is drawn on the right-hand axis.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 METRICS.csv OUT.png [TITLE]" >&2; exit 2; }
csv=$1 out=$2 title=${3:-"BYOL on Fashion-MNIST: kNN (k=20) monitor"}
[ -r "$csv" ] || { echo "$0: $csv: cannot read" >&2; exit 1; }
head -1 "$csv" | grep -q '^step,loss,lr,tau,images_per_s,elapsed_s,knn_top1' ||
  { echo "$0: $csv: not a byol-c metrics CSV with a knn_top1 column" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "$0: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
knn=$(mktemp) loss=$(mktemp)
trap 'rm -f "$knn" "$loss"' EXIT
# minutes, kNN %; and minutes, mean loss of each 50 steps
awk -F, 'NR > 1 && $7 != "" { printf "%.3f %.3f\n", $6 / 60, 100 * $7 }' "$csv" > "$knn"
awk -F, 'NR > 1 { s += $2; n++; if (n == 50) { printf "%.3f %.5f\n", $6 / 60, s / n; s = 0; n = 0 } }' "$csv" > "$loss"
[ -s "$knn" ] || { echo "$0: $csv: no kNN values (train with eval.every > 0)" >&2; exit 1; }
gnuplot <<GP
set terminal pngcairo size 800,480 font ",11"
set output "$out"
set title "$title"
set xlabel "training time (minutes, 2 cores)"
set ylabel "kNN top-1 on the test split (%)"
set y2label "BYOL loss (mean of 50 steps)"
set ytics nomirror
set y2tics
set grid
set key bottom right
plot "$knn" using 1:2 with linespoints lw 2 pt 7 title "kNN top-1", \
     "$loss" using 1:2 axes x1y2 with lines lc rgb "#999999" title "loss"
GP
echo "$out"
