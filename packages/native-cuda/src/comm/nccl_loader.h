// Run-time NCCL discovery (see nccl_loader.cpp).
#pragma once
#include <string>

namespace vlmoe {

struct NcclInfo {
  bool available = false;
  int version = 0;  // NCCL_VERSION_CODE, e.g. 22105 for 2.21.5
  std::string reason;
};

NcclInfo nccl_info();

}  // namespace vlmoe
