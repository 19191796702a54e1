/**
 * # Metrics
 *
 * Pure functions over plain arrays and typed arrays (no tensors). Every function checks its
 * input and throws an error naming the offending argument (length mismatches, empty inputs,
 * NaN scores, out-of-range indices, malformed labels). Fractions are in [0, 1]; percentages
 * are named as such.
 *
 * ## VQA — `vqaAccuracy`, `vqaScore`, `vqaSoftScore`, `softScore`
 *
 * Exactly the official evaluation (GT-Vision-Lab/VQA `PythonEvaluationTools/vqaEvaluation/
 * vqaEval.py`, master), checked against a transcription of it on 3,000 answer sets
 * (`test/fixtures/metrics/vqa_official.py`):
 *
 * 1. Every gt answer and the predicted answer: `\n` and `\t` → space, then Python's `strip()`
 *    (`cleanAnswerWhitespace` from `@vlmoe/data`): Python's whitespace set (`PYTHON_WHITESPACE`:
 *    U+001C–U+001F and U+0085 are whitespace, U+FEFF is not — unlike JavaScript's `trim()`),
 *    also used by `processDigitArticle`'s `split()`; the official `\d` is any Unicode digit.
 * 2. Only when these gt answers are not all identical (`len(set(gtAnswers)) > 1`), the gt
 *    answers and the prediction are normalised with `processPunctuation` then
 *    `processDigitArticle` (from `@vlmoe/data`): punctuation `; / [ ] " { } ( ) = + \ _ - > < @
 *    ` , ? !` is deleted when it touches a space or the text has a digit-comma-digit, else
 *    replaced by a space; periods not followed by a digit are deleted; lower case; number
 *    words zero…ten and "none" → digits; articles a/an/the dropped; contractions restored
 *    ("dont" → "don't"). When all annotators agree, no normalisation happens, so the
 *    prediction must match their answer up to outer whitespace (official behaviour).
 * 3. Accuracy of the question = mean over the annotators j of
 *    `min(1, #{annotators k ≠ j whose answer equals the prediction} / 3)` — the average over
 *    the 10-choose-9 annotator subsets. It is 0, 0.3, 0.6, 0.9 or 1 (for 0, 1, 2, 3, ≥4
 *    matching annotators out of 10) — and other values for other annotator counts.
 * 4. `overall` = mean over all annotated questions (a missing prediction scores 0 and is
 *    listed in `missingIds`); `overallPercent` = the official `round(100 · sum / n, 2)` with
 *    Python 3 rounding (`pythonRound`: correctly rounded, exact ties to even). Sums run in the
 *    annotations' key order, left to right, like Python ≤ 3.11's `sum` (3.12+ compensates;
 *    results can differ in the last bit, never visibly at 2 decimals but for exact ties).
 *    `perQuestionType` / `perAnswerType` give `{accuracy, percent, count}` per
 *    `questionType` / `answerType` (official `question_type`, `answer_type` also accepted)
 *    over the questions that carry one. Question ids match by string form; a prediction for
 *    an unannotated question throws unless `onUnknown: 'ignore'` (then counted in `unknown`);
 *    two predictions for one question throw.
 *
 * `vqaScore(answer, gtAnswers)` is step 1–3 for one question. `softScore(n)` is the VLMo/ViLT
 * training target 0, 0.3, 0.6, 0.9, 1.0 for n = 0, 1, 2, 3, ≥4 annotators;
 * `vqaSoftScore(answer, gtAnswers)` = `softScore(#annotators whose normalizeAnswer equals the
 * answer's)`, with normalisation always applied, as the training targets are built.
 *
 * ## NLVR / NLVR2 — `nlvrAccuracy`, `nlvrConsistency`, `nlvrEvaluate`
 *
 * Truth values may be booleans, 0/1 or "true"/"false" strings (any case). Accuracy = share of
 * examples whose prediction equals the label. Consistency = share of unique sentences all of
 * whose examples are right. Grouping (`groupBy`):
 * - `'nlvr2'` — the official NLVR2 rule (lil-lab/nlvr `nlvr2/eval/metrics.py`): blank the
 *   pair field of `split-setId-pairId-sentenceId` (`dev-850-3-1` → `dev-850--1`), i.e. one
 *   sentence of one image set over every image pair it was paired with;
 * - `'nlvr1'` — the official NLVR rule (`nlvr/metrics_images.py`): the sentence number, the
 *   first numeric field (`3776-0` → `3776`; with a split prefix `dev-3776-0[-k]` → `dev-3776`);
 * - `'sentence'` — the sentence text;
 * - `'auto'` (default) — `'sentence'` when every example carries a sentence, else `'nlvr2'`
 *   when every identifier has four fields with a non-numeric first one, else `'nlvr1'`;
 * - or a function example → key.
 * Grouping by text equals the official NLVR2 grouping except that identical sentences of
 * different image sets merge into one group; pass the original identifiers with
 * `groupBy: 'nlvr2'` to get the leaderboard number exactly.
 *
 * ## Retrieval — `retrievalMetrics`, `retrievalPercent`
 *
 * Input: an images × texts score matrix (row-major `Float32Array`/`Float64Array`), or a block
 * provider `{numImages, numTexts, scoreBlock(r0, r1), blockRows?}` returning rows r0…r1−1 so
 * that e.g. 5,000 × 25,000 is evaluated in O(blockRows × numTexts) memory; and
 * `textToImage[t]`, the image of text t (any number of captions per image).
 * Order: score descending, then index ascending (among equal scores the lower index ranks
 * first), so the 0-based rank of a ground truth = #{candidates with a greater score} +
 * #{candidates with an equal score and a lower index}; no sorting is done.
 * - TR@K = share of images whose best-ranked caption has rank < K (any caption in the top K).
 * - IR@K = share of texts whose image has rank < K among all images.
 * K defaults to 1, 5, 10; K ≥ the number of candidates is allowed (every query is a hit).
 * IR from blocks keeps each text's top max(K) images (one pass; two passes over the blocks
 * when min(max K, numImages) > 128). Images without captions throw unless `imagesWithoutCaptions` is
 * `'exclude'` (left out of TR) or `'miss'` (TR misses). NaN scores throw; ±Infinity is a
 * score like any other. `ranks: true` also returns the per-query ranks. Results are
 * fractions; `retrievalPercent` multiplies by 100.
 *
 * ## Classification — `accuracy`, `classificationAccuracy`, `argmaxRows`, `itmAccuracy`,
 * `expectedCalibrationError`, `calibrationBins`
 *
 * - `accuracy(predictions, labels)`: share of `predictions[i] === labels[i]`.
 * - `classificationAccuracy(logits, labels, numClasses)`: argmax (first maximum on ties).
 * - `itmAccuracy(scores, labels, {threshold = 0.5})`: N scores (matched when
 *   `score > threshold`; pass 0 for logits) or 2N logits `[not matched, matched]` (matched
 *   when logit₁ > logit₀; a tie is "not matched", as argmax).
 * - `expectedCalibrationError(probabilities, labels, nBins = 15)` =
 *   Σ_b (|B_b| / N) · |acc(B_b) − conf(B_b)|, with `nBins` equal-width bins over the
 *   confidence: bin b holds (b/nBins, (b+1)/nBins] (edges computed as b / nBins), the first
 *   bin also holds 0. `probabilities` is `[N, C]` (confidence = row maximum, prediction =
 *   first argmax) or N values for a binary task (p = P(class 1): prediction = p > 0.5,
 *   confidence = max(p, 1 − p)). Probabilities outside [0, 1] throw. `calibrationBins` gives
 *   the per-bin counts, accuracy and confidence (reliability diagram).
 */
export { vqaAccuracy, vqaScore, vqaSoftScore, softScore } from './vqa.js';
export type { QuestionId, AnnotatorAnswer, VqaAnnotation, VqaPrediction, VqaTypeAccuracy, VqaAccuracyResult, VqaAccuracyOptions } from './vqa.js';
export { nlvrAccuracy, nlvrConsistency, nlvrEvaluate, nlvr1SentenceKey, nlvr2SentenceKey } from './nlvr.js';
export type { NlvrLabel, NlvrExample, NlvrGroupBy, NlvrConsistencyOptions, NlvrEvaluation } from './nlvr.js';
export { retrievalMetrics, retrievalPercent } from './retrieval.js';
export type { ScoreMatrix, ScoreBlockProvider, RetrievalOptions, RetrievalRanks, RetrievalResult } from './retrieval.js';
export { accuracy, argmaxRows, classificationAccuracy, itmAccuracy, expectedCalibrationError, calibrationBins } from './classification.js';
export type { ItmOptions, CalibrationBin } from './classification.js';
export { pythonRound } from './util.js';
