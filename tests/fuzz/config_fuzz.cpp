// libFuzzer target: the YAML configuration loaders on arbitrary files. Every
// input either loads or throws config::error; nothing else may escape.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/lstp-config-fuzz-" + std::to_string(::getpid()) + ".yaml";
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    (void)config::load_end(path);
  } catch (const config::error&) {
  }
  try {
    (void)config::load_middle(path);
  } catch (const config::error&) {
  }
  return 0;
}
