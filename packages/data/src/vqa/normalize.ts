/**
 * Answer normalisation of the official VQA evaluation (and ViLT's `normalize_word`):
 * punctuation handling, number words to digits, articles removed, contractions fixed,
 * lower case. Used by the converters (answer vocabulary, soft scores) and by the metrics.
 *
 * The official code is Python: its `strip()` / `split()` use Python's whitespace
 * ({@link PYTHON_WHITESPACE}, not JavaScript's `trim()` / `\s`) and its `\d` (a `str`
 * pattern) matches every Unicode decimal digit (`\p{Nd}`), not only 0-9.
 */
import { pythonSplit, pythonStrip } from './whitespace.js';

const CONTRACTIONS: Record<string, string> = {
  aint: "ain't", arent: "aren't", cant: "can't", couldve: "could've", couldnt: "couldn't",
  "couldn'tve": "couldn't've", "couldnt've": "couldn't've", didnt: "didn't", doesnt: "doesn't", dont: "don't", hadnt: "hadn't",
  "hadnt've": "hadn't've", "hadn'tve": "hadn't've", hasnt: "hasn't", havent: "haven't", hed: "he'd", "hed've": "he'd've",
  "he'dve": "he'd've", hes: "he's", howd: "how'd", howll: "how'll", hows: "how's", "Id've": "I'd've", "I'dve": "I'd've",
  Im: "I'm", Ive: "I've", isnt: "isn't", itd: "it'd", "itd've": "it'd've", "it'dve": "it'd've", itll: "it'll", "let's": "let's",
  maam: "ma'am", mightnt: "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've", mightve: "might've",
  mustnt: "mustn't", mustve: "must've", neednt: "needn't", notve: "not've", oclock: "o'clock", oughtnt: "oughtn't",
  "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", shant: "shan't", "shed've": "she'd've", "she'dve": "she'd've",
  "she's": "she's", shouldve: "should've", shouldnt: "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
  "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", somebodyll: "somebody'll",
  somebodys: "somebody's", someoned: "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
  someonell: "someone'll", someones: "someone's", somethingd: "something'd", "somethingd've": "something'd've",
  "something'dve": "something'd've", somethingll: "something'll", thats: "that's", thered: "there'd", "thered've": "there'd've",
  "there'dve": "there'd've", therere: "there're", theres: "there's", theyd: "they'd", "theyd've": "they'd've",
  "they'dve": "they'd've", theyll: "they'll", theyre: "they're", theyve: "they've", twas: "'twas", wasnt: "wasn't",
  "wed've": "we'd've", "we'dve": "we'd've", weve: "we've", werent: "weren't", whatll: "what'll", whatre: "what're",
  whats: "what's", whatve: "what've", whens: "when's", whered: "where'd", wheres: "where's", whereve: "where've",
  whod: "who'd", "whod've": "who'd've", "who'dve": "who'd've", wholl: "who'll", whos: "who's", whove: "who've", whyll: "why'll",
  whyre: "why're", whys: "why's", wont: "won't", wouldve: "would've", wouldnt: "wouldn't", "wouldnt've": "wouldn't've",
  "wouldn'tve": "wouldn't've", yall: "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
  "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", youd: "you'd", "youd've": "you'd've", "you'dve": "you'd've",
  youll: "you'll", youre: "you're", youve: "you've",
};

const MANUAL_MAP: Record<string, string> = {
  none: '0', zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5',
  six: '6', seven: '7', eight: '8', nine: '9', ten: '10',
};
const ARTICLES = new Set(['a', 'an', 'the']);
const PUNCT = [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'];
const PERIOD_STRIP = /(?!<=\p{Nd})(\.)(?!\p{Nd})/gu;
const COMMA_STRIP = /(\p{Nd})(,)(\p{Nd})/u;

/** The official `processPunctuation`. */
export function processPunctuation(inText: string): string {
  let out = inText;
  const commaNumber = COMMA_STRIP.test(inText);
  for (const p of PUNCT) {
    if (inText.includes(p + ' ') || inText.includes(' ' + p) || commaNumber) out = out.split(p).join('');
    else out = out.split(p).join(' ');
  }
  // the official code passes re.UNICODE (= 32) as re.sub's *count*: at most 32 periods go
  let n = 0;
  return out.replace(PERIOD_STRIP, (m) => (n++ < 32 ? '' : m));
}

/** The official `processDigitArticle`. */
export function processDigitArticle(inText: string): string {
  const words: string[] = [];
  for (const raw of pythonSplit(inText.toLowerCase())) {
    const w = Object.hasOwn(MANUAL_MAP, raw) ? MANUAL_MAP[raw]! : raw;
    if (!ARTICLES.has(w)) words.push(w);
  }
  return words.map((w) => (Object.hasOwn(CONTRACTIONS, w) ? CONTRACTIONS[w]! : w)).join(' ');
}

/**
 * The official evaluation's first step on every answer (gt and predicted): `\n` and `\t`
 * become spaces, then Python's `strip()`.
 */
export function cleanAnswerWhitespace(answer: string): string {
  return pythonStrip(answer.replace(/\n/g, ' ').replace(/\t/g, ' '));
}

/** Normalise an answer as the VQA evaluation does (whitespace, punctuation, digits, articles, contractions). */
export function normalizeAnswer(answer: string): string {
  return processDigitArticle(processPunctuation(cleanAnswerWhitespace(answer)));
}
