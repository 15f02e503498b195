// ro::kubesync::Decode on arbitrary bytes (a JetStream message). It returns an Envelope
// or throws DecodeError; a decoded envelope encodes and decodes back to itself, and its
// encoding is exactly what Encode documents (a JSON object of the eight members).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "ro/kubesync/envelope.h"

namespace {

using ro::fuzz::Check;
using ro::kubesync::Envelope;

void CheckSame(const Envelope& a, const Envelope& b) {
  Check(a.type == b.type, "round trip keeps type");
  Check(a.resync == b.resync, "round trip keeps resync");
  Check(a.gvr == b.gvr, "round trip keeps gvr");
  Check(a.observed_at == b.observed_at, "round trip keeps observedAt");
  Check(a.object == b.object, "round trip keeps object");
  Check(a.pruned == b.pruned, "round trip keeps pruned");
  Check(a.source_deleted == b.source_deleted, "round trip keeps sourceDeleted");
  Check(a.source_namespace == b.source_namespace, "round trip keeps namespace");
  Check(a.config_generation == b.config_generation, "round trip keeps configGeneration");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Envelope decoded;
  try {
    decoded = ro::kubesync::Decode(text);
  } catch (const ro::kubesync::DecodeError&) {
    return 0;
  }
  Check(decoded.object.is_object(), "the object is a JSON object");
  const std::string wire = ro::kubesync::Encode(decoded);
  Check(ro::fuzz::ParseJsonInput(wire).is_object(), "Encode writes a JSON object");
  try {
    CheckSame(decoded, ro::kubesync::Decode(wire));
  } catch (const ro::kubesync::DecodeError&) {
    Check(false, "Decode(Encode(envelope)) succeeds");
  }
  return 0;
}
