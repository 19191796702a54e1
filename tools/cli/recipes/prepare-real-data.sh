#!/usr/bin/env bash
# Prepares the real datasets of ../shared/data (easy-VQA, NLVR1, Flickr8k-mini, COCO-mini) as
# one recipe dataset folder for `vlmoe bench --config tools/cli/recipes/real-data.json`:
#   vqa_{train,val}.arrow      easy-VQA train / test (13 answers; answers.json)
#   nlvr2_{train,val}.arrow    NLVR1 test / hidden (two of the six rendered permutations per row)
#   captions_{train,val}.arrow Flickr8k-mini (753 photos) / COCO-mini (130 photos), 5 captions each
#   tokenizer.json             WordPiece built from the training texts
# usage: bash tools/cli/recipes/prepare-real-data.sh [SHARED=../shared/data] [OUT=data/real]
set -euo pipefail
SHARED=${1:-../shared/data}
OUT=${2:-data/real}
DATA="node $(dirname "$0")/../../../packages/data/dist/cli.js"
for d in easy-vqa nlvr1 flickr8k-mini coco-mini; do
  [ -d "$SHARED/$d" ] || { echo "prepare-real-data: $SHARED/$d is missing" >&2; exit 2; }
done
mkdir -p "$OUT"
$DATA convert easy-vqa "$SHARED/easy-vqa/train/questions.json" "$OUT/vqa_train.arrow"
$DATA convert easy-vqa "$SHARED/easy-vqa/test/questions.json" "$OUT/vqa_val.arrow"
cp "$OUT/vqa_train_answers.json" "$OUT/answers.json"
$DATA convert nlvr1 "$SHARED/nlvr1/test/test.json" "$OUT/nlvr2_train.arrow"
$DATA convert nlvr1 "$SHARED/nlvr1/hidden/hidden.json" "$OUT/nlvr2_val.arrow"
$DATA convert flickr "$SHARED/flickr8k-mini/Flickr8k.token.txt" "$OUT/captions_train.arrow" \
  --split-list "$SHARED/flickr8k-mini/Flickr_8k.trainImages.txt"
$DATA convert coco "$SHARED/coco-mini/annotations/captions_train2017.json" "$OUT/captions_val.arrow" \
  --images "$SHARED/coco-mini/train2017"
$DATA tokenizer "$OUT/tokenizer.json" "$OUT/captions_train.arrow" "$OUT/vqa_train.arrow" "$OUT/nlvr2_train.arrow" --vocab-size 4000
echo "prepared $OUT: $(ls "$OUT" | tr '\n' ' ')"
