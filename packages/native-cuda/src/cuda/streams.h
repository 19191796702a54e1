// Side streams and events: what lets communication (NCCL) run beside computation.
//
// Every kernel and copy of the addon runs on the device's legacy default stream (the compute
// stream). A side stream is created non-blocking, so it does not synchronise implicitly with
// that stream; work is ordered across the two with events: record an event on one stream,
// make the other wait for it. Streams and events are opaque handles (void*) so code outside
// the .cu files needs no CUDA headers.
#pragma once

namespace vlmoe {

// A non-blocking stream on `device` (cudaStreamNonBlocking), highest priority.
void* cuda_stream_create(int device);
void cuda_stream_destroy(int device, void* stream);
// An event without timing (cudaEventDisableTiming), for ordering and polling.
void* cuda_event_create(int device);
void cuda_event_destroy(int device, void* event);
// Records `event` on `stream` (nullptr: the compute stream).
void cuda_event_record(int device, void* event, void* stream);
// Makes `stream` (nullptr: the compute stream) wait for `event` without blocking the host.
void cuda_stream_wait_event(int device, void* stream, void* event);
// Whether everything before `event`'s record has finished; throws on a CUDA error.
bool cuda_event_done(int device, void* event);

}  // namespace vlmoe
