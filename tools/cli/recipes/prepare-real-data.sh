#!/usr/bin/env bash
# Prepares the real datasets of ../shared/data (easy-VQA, NLVR1, Flickr8k-mini, COCO-mini) as
# one recipe dataset folder for `vlmoe bench` / `vlmoe study --config tools/cli/recipes/real-data.json`:
#   vqa_{train,val,test}.arrow      easy-VQA train less a dev split / the dev split (10 % of the
#                                   training images) / easy-VQA test (13 answers; answers.json)
#   nlvr2_{train,val,test}.arrow    NLVR1 test less a dev split / the dev split (20 % of its
#                                   statements: 185 of its 990 rows) / NLVR1 hidden (two of the six rendered
#                                   permutations per row)
#   captions_{train,val,test}.arrow Flickr8k-mini less a dev split / the dev split (10 % of its
#                                   753 photos) / COCO-mini (130 photos), 5 captions each
#   tokenizer.json                  WordPiece built from the training texts
# The dev splits (val) are what training curves and a study's hyperparameter search look at; the
# test splits are looked at once, for the table. The splits are fixed by `vlmoe-data split --seed 0`.
# usage: bash tools/cli/recipes/prepare-real-data.sh [SHARED=../shared/data] [OUT=data/real]
set -euo pipefail
SHARED=${1:-../shared/data}
OUT=${2:-data/real}
DATA="node $(dirname "$0")/../../../packages/data/dist/cli.js"
for d in easy-vqa nlvr1 flickr8k-mini coco-mini; do
  [ -d "$SHARED/$d" ] || { echo "prepare-real-data: $SHARED/$d is missing" >&2; exit 2; }
done
mkdir -p "$OUT"
ALL="$OUT/.all"
trap 'rm -rf "$ALL"' EXIT
$DATA convert easy-vqa "$SHARED/easy-vqa/train/questions.json" "$ALL/vqa_train.arrow"
$DATA split "$ALL/vqa_train.arrow" "$OUT/vqa_train.arrow" "$OUT/vqa_val.arrow" --fraction 0.1 --seed 0
$DATA convert easy-vqa "$SHARED/easy-vqa/test/questions.json" "$OUT/vqa_test.arrow"
cp "$OUT/vqa_train_answers.json" "$OUT/answers.json"
$DATA convert nlvr1 "$SHARED/nlvr1/test/test.json" "$ALL/nlvr2_train.arrow"
$DATA split "$ALL/nlvr2_train.arrow" "$OUT/nlvr2_train.arrow" "$OUT/nlvr2_val.arrow" --fraction 0.2 --seed 0
$DATA convert nlvr1 "$SHARED/nlvr1/hidden/hidden.json" "$OUT/nlvr2_test.arrow"
$DATA convert flickr "$SHARED/flickr8k-mini/Flickr8k.token.txt" "$ALL/captions_train.arrow" \
  --split-list "$SHARED/flickr8k-mini/Flickr_8k.trainImages.txt"
$DATA split "$ALL/captions_train.arrow" "$OUT/captions_train.arrow" "$OUT/captions_val.arrow" --fraction 0.1 --seed 0
$DATA convert coco "$SHARED/coco-mini/annotations/captions_train2017.json" "$OUT/captions_test.arrow" \
  --images "$SHARED/coco-mini/train2017" --split test
$DATA tokenizer "$OUT/tokenizer.json" "$OUT/captions_train.arrow" "$OUT/vqa_train.arrow" "$OUT/nlvr2_train.arrow" --vocab-size 4000
echo "prepared $OUT: $(ls "$OUT" | tr '\n' ' ')"
