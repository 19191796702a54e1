export { convertCocoCaptions, convertKarpathy, type CocoCaptionsInput, type KarpathyInput } from './coco.js';
export { convertFlickr, parseFlickrTokens, type FlickrInput } from './flickr.js';
export { convertVqa2, convertEasyVqa, EASY_VQA_ANSWER_TYPES, type Vqa2Input, type EasyVqaInput } from './vqa.js';
export { convertNlvr1, convertNlvr2, type Nlvr1Input, type Nlvr2Input } from './nlvr.js';
export { loadImageFile, ImageFileError, type ConvertOptions, type ConvertReport, type ImageCheck, type SkippedImage } from './common.js';
