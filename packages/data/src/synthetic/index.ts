/**
 * # Shapes world — the embedded synthetic default dataset
 *
 * A deterministic generator of small vision-language data that lets pretraining and
 * fine-tuning run on a fresh machine with no downloads. Same seed and options → the same
 * bytes in every file, on any machine (pure-JS rasteriser and PNG encoder: no zlib build is
 * involved, and the only libm results, the star's vertices, are rounded to 1e-9), given the
 * same apache-arrow version for the Arrow files.
 *
 * **Scenes.** 1–4 objects (uniformly), each a shape from {circle, square, triangle, diamond,
 * star, cross}, a colour from the palette {red, orange, yellow, green, blue, purple, brown,
 * gray}, a size {small (radius 7.5–9 % of the image side), large (13–15 %)} and a position
 * region {left, right, top, bottom, center} derived from its centre (centre if both offsets
 * from the image centre are < 0.1, else the side of the dominant axis; positions near a
 * region boundary or a diagonal are never sampled, so every position is unambiguous).
 * Shapes never overlap (rejection sampling). The background is a light colour with a
 * gradient (vertical, horizontal or diagonal), and uniform pixel noise (±2–8) covers the
 * whole image. A scene is a plain JSON object (`Scene`), kept in `scenes_<split>.json`.
 *
 * **Images.** RGB PNGs, 64×64 by default (`imageSize`), anti-aliased shapes (exact signed
 * distances). About 6.5 KB each at 64 px. Generation is single-threaded: 10,000 images with
 * all texts and Arrow files take about 10–15 s (measured on a shared 2-core machine).
 *
 * **Captions.** 5 per image (`captionsPerImage`), all true, from a grammar: exhaustive lists
 * ("a red circle and two blue squares", "an image showing a large star", "there are two
 * shapes: a circle and a square"), counts ("there are three shapes"), positions ("a large
 * green triangle on the left"), relations ("a red circle to the left of a blue square",
 * above/below), summaries ("all shapes are red", "the shapes are red and blue"). The first
 * caption of every image is its identifying caption: every object with size, colour, shape and
 * position ("a large red circle on the left and a small blue square at the top").
 *
 * **VQA.** 6 questions per image (`questionsPerImage`), of types color ("what color is the
 * circle?"), shape ("what shape is the red object?"), size ("what size is the star?"),
 * position ("where is the triangle?" → left/right/top/bottom/center), count ("how many red
 * shapes are there?" → 0–4), exist ("is there a blue star?") and yesno ("is the circle red?",
 * "are there exactly two squares?", "are there more red shapes than blue shapes?"; yes/no
 * balanced). Each has 10 simulated annotators: 0–3 give a plausible wrong answer, the rest
 * the right one, so VLMo soft scores 0.3/0.6/0.9/1.0 all occur. The answer vocabulary is
 * the closed set of 28 answers (`SHAPES_WORLD_ANSWERS`, saved as `answers.json`). Test rows
 * carry answers too (unlike VQAv2).
 *
 * **NLVR2.** Pairs of independent scenes with one statement each ("the left image contains
 * exactly two circles", "both images contain a red shape", "there are more triangles in the
 * left image than in the right image", "the right image has a blue square", "the two images
 * contain five shapes in total"…), labelled "True"/"False" by evaluation, ~50 % true.
 * Identifiers `<split>-<n>-0`.
 *
 * **Files** in the output folder:
 *  - `captions_{train,val,test}.arrow` — captions rows (`image_id` = the VQA image id as a string)
 *  - `retrieval_{val,test}.arrow` — the retrieval evaluation candidates: the split's images
 *    whose identifying caption no other image of the split shares, each with that caption
 *    only, so the right caption is distinguishable (chance TR@1 = IR@1 = 1 / rows)
 *  - `vqa_{train,val,test}.arrow` — VQA rows (same images as the captions rows, same order);
 *    `answers`/`answer_labels`/`answer_scores` from the vocabulary's soft scores,
 *    `question_id = image_id × questionsPerImage + k`, image ids unique over the splits
 *  - `nlvr2_{train,val,test}.arrow` — NLVR2 rows, one statement per pair
 *  - `answers.json` — the answer vocabulary (`AnswerVocab.save`)
 *  - `vqa_{split}_annotations.json` — `{ "<question_id>": {answers: [10 raw annotator answers],
 *    questionType (color, shape, size, position, count, exist, yesno), answerType (yes/no,
 *    number, other: the official VQA types)} }`
 *  - `scenes_{split}.json` — `{ split, images: [{image_id, scene}], pairs: [{identifier, left, right}] }`
 *  - `manifest.json` — generator version, resolved options, counts, size and SHA-256 per file;
 *    `ensureShapesWorld` regenerates only when it does not match.
 *
 * Defaults: 2,000/250/250 images and 1,000/125/125 NLVR pairs (train/val/test), seed 0.
 * `shapesWorldTexts(options)` yields every caption, question and statement (for building a
 * tokenizer vocabulary) without rendering.
 *
 * **The rich world** (`concepts: 'rich'`; the default is `'standard'`, everything above):
 * 12 colours (the 8 plus pink, teal, black, lime — each far from the others and from the
 * background, so they survive resizing to 32 px), positions on a 3×3 grid ("top left", "top",
 * "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"; centres at
 * least 0.05 from the third lines), 1–6 objects, the same shapes and sizes, the same grammar
 * over the larger word lists (38 answers, counts 0–6), and default sizes 10,000/500/500 images
 * and 5,000/250/250 NLVR pairs. The manifest's options record `concepts: 'rich'`; a standard
 * world's do not name concepts (its files are those of the generator before the option).
 */
// Names are prefixed where they would be ambiguous in the package root's re-exports.
export {
  sampleScene,
  positionOf,
  countMatching,
  SHAPES as SCENE_SHAPES,
  COLORS as SCENE_COLORS,
  PALETTE as SCENE_PALETTE,
  SIZES as SCENE_SIZES,
  POSITIONS as SCENE_POSITIONS,
  SIZE_RADIUS as SCENE_SIZE_RADIUS,
  MIN_OBJECTS as SCENE_MIN_OBJECTS,
  MAX_OBJECTS as SCENE_MAX_OBJECTS,
  RICH_COLORS as SCENE_RICH_COLORS,
  GRID_POSITIONS as SCENE_GRID_POSITIONS,
  RICH_MAX_OBJECTS as SCENE_RICH_MAX_OBJECTS,
  gridPositionOf,
  CONCEPTS as SHAPES_WORLD_CONCEPTS,
  STANDARD_CONCEPTS as SHAPES_WORLD_STANDARD_CONCEPTS,
  RICH_CONCEPTS as SHAPES_WORLD_RICH_CONCEPTS,
  conceptSet as shapesWorldConceptSet,
  type ConceptsName as ShapesWorldConcepts,
  type ConceptSet as ShapesWorldConceptSet,
  type Scene,
  type SceneObject,
  type SceneBackground,
  type ShapeName,
  type ColorName,
  type SizeName,
  type PositionName,
  type Attrs as SceneAttrs,
} from './scene.js';
export { DEFAULT_IMAGE_SIZE as SHAPES_WORLD_IMAGE_SIZE, rasterize as rasterizeScene, renderScene, renderSceneSync } from './render.js';
export { encodePngRgb } from './png.js';
export { captionsFor, identifyingCaption, DEFAULT_CAPTIONS_PER_IMAGE } from './captions.js';
export {
  questionsFor,
  annotatorAnswers,
  shapesWorldAnswerVocab,
  shapesWorldAnswers,
  SHAPES_WORLD_ANSWERS,
  QUESTION_TYPES as SCENE_QUESTION_TYPES,
  DEFAULT_QUESTIONS_PER_IMAGE,
  ANNOTATORS as SHAPES_WORLD_ANNOTATORS,
  type Question as SceneQuestion,
  type QuestionType as SceneQuestionType,
} from './questions.js';
export { statementFor, type Statement as SceneStatement } from './statements.js';
export {
  generateShapesWorld,
  ensureShapesWorld,
  shapesWorldMismatch,
  readShapesWorldManifest,
  resolveShapesWorldOptions,
  shapesWorldTexts,
  shapesWorldImage,
  shapesWorldPair,
  shapesWorldFileNames,
  SHAPES_WORLD_GENERATOR,
  SHAPES_WORLD_VERSION,
  RETRIEVAL_SPLITS as SHAPES_WORLD_RETRIEVAL_SPLITS,
  SPLITS as SHAPES_WORLD_SPLITS,
  DEFAULT_SPLITS as SHAPES_WORLD_DEFAULT_SPLITS,
  DEFAULT_NLVR_PAIRS as SHAPES_WORLD_DEFAULT_NLVR_PAIRS,
  RICH_DEFAULT_SPLITS as SHAPES_WORLD_RICH_DEFAULT_SPLITS,
  RICH_DEFAULT_NLVR_PAIRS as SHAPES_WORLD_RICH_DEFAULT_NLVR_PAIRS,
  shapesWorldDefaultSizes,
  type SplitName as ShapesWorldSplit,
  type PerSplit as ShapesWorldPerSplit,
  type ShapesWorldOptions,
  type ResolvedShapesWorldOptions,
  type ShapesWorldManifest,
  type ShapesWorldFileInfo,
  type ShapesWorldImage,
  type ShapesWorldPair,
  type ShapesWorldQuestion,
  type EnsureShapesWorldOptions,
} from './generate.js';
