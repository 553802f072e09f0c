#include "uplink/negotiate_context.hpp"

#include <botan/base64.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>

#include <vector>

namespace uplink {

namespace {

// 1.3.6.1.5.5.2: SPNEGO, what browsers send; it carries Kerberos.
gss_OID_desc spnego_oid{6, const_cast<char*>("\x2b\x06\x01\x05\x05\x02")};


std::string gss_words(OM_uint32 code, int type, gss_OID mech) {
  std::string out;
  OM_uint32 context = 0;
  do {
    OM_uint32 minor = 0;
    gss_buffer_desc text{0, nullptr};
    if (gss_display_status(&minor, code, type, mech, &context, &text) != GSS_S_COMPLETE) break;
    if (!out.empty()) out += "; ";
    out.append(static_cast<const char*>(text.value), text.length);
    gss_release_buffer(&minor, &text);
  } while (context != 0);
  return out;
}

std::string failure(OM_uint32 major, OM_uint32 minor) {
  auto words = gss_words(major, GSS_C_GSS_CODE, GSS_C_NO_OID);
  if (minor != 0) {
    auto more = gss_words(minor, GSS_C_MECH_CODE, GSS_C_NO_OID);
    if (!more.empty()) words += ": " + more;
  }
  return words;
}

}  // namespace

struct negotiate_context::state {
  gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
  gss_name_t target = GSS_C_NO_NAME;
  bool complete = false;  // GSSAPI has said all it had to say
};

negotiate_context::negotiate_context() : s_(std::make_unique<state>()) {}

negotiate_context::~negotiate_context() {
  OM_uint32 minor = 0;
  if (s_->ctx != GSS_C_NO_CONTEXT) gss_delete_sec_context(&minor, &s_->ctx, GSS_C_NO_BUFFER);
  if (s_->target != GSS_C_NO_NAME) gss_release_name(&minor, &s_->target);
}

std::optional<std::string> negotiate_context::step(const std::string& host, const std::string& server_token,
                                                   std::string& why) {
  OM_uint32 minor = 0;
  // A complete context takes no more tokens (GSSAPI would crash on one): a
  // proxy that answers a finished login with another challenge refuses it.
  if (s_->complete) {
    why = "the proxy refused the ticket";
    return std::nullopt;
  }
  if (s_->target == GSS_C_NO_NAME) {
    const std::string service = "HTTP@" + host;
    gss_buffer_desc name{service.size(), const_cast<char*>(service.data())};
    const auto major = gss_import_name(&minor, &name, GSS_C_NT_HOSTBASED_SERVICE, &s_->target);
    if (GSS_ERROR(major)) {
      why = "cannot name the service HTTP@" + host + ": " + failure(major, minor);
      return std::nullopt;
    }
  }
  Botan::secure_vector<std::uint8_t> input;
  if (!server_token.empty()) {
    try {
      input = Botan::base64_decode(server_token);
    } catch (const std::exception&) {
      why = "the proxy's Negotiate token is not base64";
      return std::nullopt;
    }
  }
  gss_buffer_desc in{input.size(), input.empty() ? nullptr : input.data()};
  gss_buffer_desc out{0, nullptr};
  gss_OID actual_mech = GSS_C_NO_OID;
  OM_uint32 flags = 0;
  OM_uint32 lifetime = 0;
  const auto major = gss_init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &s_->ctx, s_->target, &spnego_oid,
                                          GSS_C_MUTUAL_FLAG | GSS_C_SEQUENCE_FLAG, 0, GSS_C_NO_CHANNEL_BINDINGS,
                                          input.empty() ? GSS_C_NO_BUFFER : &in, &actual_mech, &out, &flags,
                                          &lifetime);
  if (GSS_ERROR(major)) {
    why = failure(major, minor);
    if (out.value) gss_release_buffer(&minor, &out);
    return std::nullopt;
  }
  s_->complete = major == GSS_S_COMPLETE;
  if (out.length == 0) {
    why = "GSSAPI had no token to send";
    return std::nullopt;
  }
  std::string token = Botan::base64_encode(static_cast<const std::uint8_t*>(out.value), out.length);
  gss_release_buffer(&minor, &out);
  return token;
}

}  // namespace uplink
