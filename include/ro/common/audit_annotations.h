// The audit annotations of manual section 2.3, written by the operator's audit admission
// webhook (src/controllers/audit) on every object of the operator's kinds, and read by
// the pipeline for the lastUpdate log field (manual 6.2.4).
#pragma once

#include <string_view>

namespace ro::common {

// RFC 3339 with nanoseconds, UTC: when the last change of spec, labels or annotations
// was admitted.
inline constexpr std::string_view kAuditLastUpdateTimeAnnotation = "audit.astronetes.io/last-update-time";
// The admitting request's userInfo.uid ("" for users without one).
inline constexpr std::string_view kAuditLastUpdateUserUidAnnotation = "audit.astronetes.io/last-update-user-uid";
// The admitting request's userInfo.username.
inline constexpr std::string_view kAuditLastUpdateUsernameAnnotation = "audit.astronetes.io/last-update-username";
// Every annotation under this prefix is the webhook's alone.
inline constexpr std::string_view kAuditAnnotationPrefix = "audit.astronetes.io/";

}  // namespace ro::common
