/** Creation order of tensors: lets autograd tell the tensors it made from older ones. */
let next = 0;

/** The id the next tensor will get. */
export function nextTensorId(): number {
  return next;
}

/** Takes an id for a new tensor. @internal */
export function takeTensorId(): number {
  return next++;
}
