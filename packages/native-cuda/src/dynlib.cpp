#include "dynlib.h"

#include <dlfcn.h>
#include <glob.h>

#include <cstdlib>

namespace vlmoe {

DynLib load_cuda_library(const char* env_var, const std::vector<std::string>& sonames, const char* pip_dir) {
  std::vector<std::string> c;
  if (const char* p = std::getenv(env_var); p && *p) c.push_back(p);
  for (const std::string& s : sonames) c.push_back(s);
  std::vector<std::string> dirs;
  if (const char* h = std::getenv("CUDA_HOME"); h && *h) dirs.push_back(std::string(h) + "/lib64");
  dirs.push_back("/usr/local/cuda/lib64");
  for (const std::string& d : dirs)
    for (const std::string& s : sonames) c.push_back(d + "/" + s);
  const std::string site[] = {"/usr/local/lib/python3*/dist-packages", "/usr/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
                              "/opt/conda/lib/python3*/site-packages", "/opt/*/.venv/lib/python3*/site-packages", "/root/.local/lib/python3*/site-packages"};
  // pip wheels: nvidia/<lib>/lib (CUDA 12 wheels) or nvidia/cu13/lib (CUDA 13 wheels, one folder)
  const std::string sub[] = {std::string("/nvidia/") + pip_dir + "/lib/", "/nvidia/cu13/lib/"};
  for (const std::string& root : site) {
    for (const std::string& s : sonames) {
      for (const std::string& dir : sub) {
        const std::string pat = root + dir + s;
        glob_t g{};
        if (glob(pat.c_str(), 0, nullptr, &g) == 0)
          for (size_t i = 0; i < g.gl_pathc; ++i) c.push_back(g.gl_pathv[i]);
        else
          c.push_back(pat);  // named in the error even though nothing matched
        globfree(&g);
      }
    }
  }
  DynLib out;
  for (const std::string& path : c) {
    if (path.find('*') != std::string::npos) {
      out.tried += "\n  " + path + " (no match)";
      continue;
    }
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h) {
      out.handle = h;
      out.path = path;
      return out;
    }
    const char* e = dlerror();
    out.tried += "\n  " + path + ": " + (e ? e : "not loadable");
  }
  return out;
}

}  // namespace vlmoe
