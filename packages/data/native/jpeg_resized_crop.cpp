// JPEG → crop → antialiased bicubic resize → uint8 HWC RGB, in one native call.
//
// Decoding uses libjpeg-turbo (the decoder Pillow uses) and, when the crop is at least twice
// the output on both axes, its DCT scaling (decode at 1/2, 1/4 or 1/8: fewer pixels to decode
// and resample). Resampling follows Pillow's ImagingResample for BICUBIC (a = -0.5, support
// widened by the scale when shrinking, weights normalised per output pixel, horizontal pass
// then vertical pass) on float intermediates; the box may be fractional after DCT scaling.
#include <napi.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

inline double bicubic(double x) {
  const double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

struct Coeffs {
  std::vector<int> start, count;
  std::vector<float> w;  // out × kmax
  int kmax = 0;
};

// Pillow's precompute_coeffs for the input range [in0, in1) (fractional) of an axis of length inSize.
Coeffs precompute(double in0, double in1, int inSize, int outSize) {
  Coeffs c;
  const double scale = (in1 - in0) / outSize;
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  c.kmax = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.start.resize(outSize);
  c.count.resize(outSize);
  c.w.assign(static_cast<size_t>(outSize) * c.kmax, 0.0f);
  const double ss = 1.0 / filterscale;
  std::vector<double> k(c.kmax);
  for (int xx = 0; xx < outSize; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double v = bicubic((x + xmin - center + 0.5) * ss);
      k[x] = v;
      total += v;
    }
    for (int x = 0; x < xmax; ++x) c.w[static_cast<size_t>(xx) * c.kmax + x] = static_cast<float>(total != 0.0 ? k[x] / total : 0.0);
    c.start[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t clip8(float v) {
  const float r = std::nearbyint(v);
  return static_cast<uint8_t>(r < 0.f ? 0.f : r > 255.f ? 255.f : r);
}

// A decompressor per call (cheap next to a decode): no thread-local state, so worker threads
// can come and go (and be terminated) freely.
struct TjHandle {
  tjhandle h = nullptr;
  TjHandle() : h(tjInitDecompress()) {
    if (!h) throw std::runtime_error("tjInitDecompress failed");
  }
  ~TjHandle() { tjDestroy(h); }
  TjHandle(const TjHandle&) = delete;
  TjHandle& operator=(const TjHandle&) = delete;
};

// jpegResizedCrop(bytes, x, y, w, h, size) → Uint8Array [size, size, 3]
Napi::Value JpegResizedCrop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() < 6 || !info[0].IsTypedArray()) throw std::invalid_argument("jpegResizedCrop(bytes: Uint8Array, x, y, w, h, size)");
    auto bytes = info[0].As<Napi::Uint8Array>();
    const int bx = info[1].As<Napi::Number>().Int32Value();
    const int by = info[2].As<Napi::Number>().Int32Value();
    const int bw = info[3].As<Napi::Number>().Int32Value();
    const int bh = info[4].As<Napi::Number>().Int32Value();
    const int size = info[5].As<Napi::Number>().Int32Value();
    if (size <= 0 || size > 8192) throw std::invalid_argument("size out of range");
    TjHandle handle;
    tjhandle tj = handle.h;
    int W = 0, H = 0, subsamp = 0, colorspace = 0;
    if (tjDecompressHeader3(tj, bytes.Data(), static_cast<unsigned long>(bytes.ByteLength()), &W, &H, &subsamp, &colorspace) != 0) {
      throw std::runtime_error(std::string("JPEG header: ") + tjGetErrorStr2(tj));
    }
    if (bx < 0 || by < 0 || bw <= 0 || bh <= 0 || bx + bw > W || by + bh > H) throw std::invalid_argument("crop box outside the image");
    // DCT scaling: the largest reduction that keeps the crop ≥ 2× the output... at least ≥ the output
    int num = 1, den = 1;
    for (int d : {8, 4, 2}) {
      if (bw / d >= 2 * size && bh / d >= 2 * size) {
        den = d;
        break;
      }
    }
    const int SW = (W * num + den - 1) / den;
    const int SH = (H * num + den - 1) / den;
    std::vector<uint8_t> rgb(static_cast<size_t>(SW) * SH * 3);
    if (tjDecompress2(tj, bytes.Data(), static_cast<unsigned long>(bytes.ByteLength()), rgb.data(), SW, SW * 3, SH, TJPF_RGB, 0) != 0) {
      if (tjGetErrorCode(tj) == TJERR_FATAL) throw std::runtime_error(std::string("JPEG decode: ") + tjGetErrorStr2(tj));
    }
    const double s = static_cast<double>(SW) / W;  // scale of the decoded image
    const double x0 = bx * s, x1 = (bx + bw) * s, y0 = by * s, y1 = (by + bh) * s;
    // rows of the crop needed (integer range) and the horizontal pass over them
    const int cx0 = static_cast<int>(std::floor(x0)), cx1 = std::min(SW, static_cast<int>(std::ceil(x1)));
    const int cy0 = static_cast<int>(std::floor(y0)), cy1 = std::min(SH, static_cast<int>(std::ceil(y1)));
    const int cw = cx1 - cx0, ch = cy1 - cy0;
    Coeffs hx = precompute(x0 - cx0, x1 - cx0, cw, size);
    Coeffs vy = precompute(y0 - cy0, y1 - cy0, ch, size);
    std::vector<float> tmp(static_cast<size_t>(ch) * size * 3);
    for (int y = 0; y < ch; ++y) {
      const uint8_t* row = rgb.data() + (static_cast<size_t>(cy0 + y) * SW + cx0) * 3;
      float* o = tmp.data() + static_cast<size_t>(y) * size * 3;
      for (int xx = 0; xx < size; ++xx) {
        const float* w = hx.w.data() + static_cast<size_t>(xx) * hx.kmax;
        const uint8_t* p = row + static_cast<size_t>(hx.start[xx]) * 3;
        float r = 0, g = 0, b = 0;
        for (int k = 0; k < hx.count[xx]; ++k) {
          r += w[k] * p[3 * k];
          g += w[k] * p[3 * k + 1];
          b += w[k] * p[3 * k + 2];
        }
        o[3 * xx] = r;
        o[3 * xx + 1] = g;
        o[3 * xx + 2] = b;
      }
    }
    auto out = Napi::Uint8Array::New(env, static_cast<size_t>(size) * size * 3);
    uint8_t* dst = out.Data();
    const size_t rowLen = static_cast<size_t>(size) * 3;
    std::vector<float> acc(rowLen);
    for (int yy = 0; yy < size; ++yy) {
      std::fill(acc.begin(), acc.end(), 0.f);
      const float* w = vy.w.data() + static_cast<size_t>(yy) * vy.kmax;
      for (int k = 0; k < vy.count[yy]; ++k) {
        const float* src = tmp.data() + static_cast<size_t>(vy.start[yy] + k) * rowLen;
        const float wk = w[k];
        for (size_t i = 0; i < rowLen; ++i) acc[i] += wk * src[i];
      }
      uint8_t* d = dst + static_cast<size_t>(yy) * rowLen;
      for (size_t i = 0; i < rowLen; ++i) d[i] = clip8(acc[i]);
    }
    return out;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("jpegResizedCrop", Napi::Function::New(env, JpegResizedCrop));
  exports.Set("turbojpeg", Napi::Boolean::New(env, true));
  return exports;
}

}  // namespace

NODE_API_MODULE(vlmoe_data_native, Init)
