// HTTP proxy logins (uplink/proxy_login.hpp) and the CONNECT handshake that
// carries them, without sockets.
#include <catch2/catch.hpp>

#include <botan/base64.h>

#include <string>

#include "uplink/proxy_handshake.hpp"
#include "uplink/proxy_login.hpp"

using uplink::auth_challenge;
using uplink::proxy_handshake;
using uplink::proxy_login;
using status = proxy_handshake::status;

namespace {

uplink::proxy http_proxy(std::string user = {}, std::string password = {}) {
  uplink::proxy p;
  p.kind = uplink::proxy_kind::http;
  p.at = {"proxy.corp.example", 3128};
  p.username = std::move(user);
  p.password = std::move(password);
  return p;
}

std::vector<auth_challenge> parse(std::string_view v) {
  std::vector<auth_challenge> out;
  REQUIRE(uplink::parse_challenges(v, out));
  return out;
}

std::string text(const uplink::bytes& b) { return std::string(b.begin(), b.end()); }
status feed(proxy_handshake& h, const std::string& s) {
  return h.feed({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

std::string header_of(const std::string& request, std::string_view name) {
  const auto at = request.find(std::string(name) + ": ");
  if (at == std::string::npos) return {};
  const auto start = at + name.size() + 2;
  return request.substr(start, request.find("\r\n", start) - start);
}

uplink::login_hooks fixed_cnonce(std::string cnonce) {
  uplink::login_hooks h;
  h.cnonce = [cnonce] { return cnonce; };
  return h;
}

}  // namespace

TEST_CASE("Proxy-Authenticate: several challenges, parameters, token68 and quoting", "[uplink][login]") {
  auto c = parse(R"(Digest realm="corp \"west\"", nonce="abc", qop="auth,auth-int", algorithm=MD5, Basic realm="x", NTLM)");
  REQUIRE(c.size() == 3);
  CHECK(c[0].scheme == "digest");
  CHECK(*c[0].param("realm") == "corp \"west\"");
  CHECK(*c[0].param("qop") == "auth,auth-int");
  CHECK(*c[0].param("algorithm") == "MD5");
  CHECK(c[1].scheme == "basic");
  CHECK(*c[1].param("realm") == "x");
  CHECK(c[2].scheme == "ntlm");
  CHECK(c[2].token68.empty());

  auto t = parse("NTLM TlRMTVNTUAACAAAA==, Negotiate  YIIB+w/x");
  REQUIRE(t.size() == 2);
  CHECK(t[0].token68 == "TlRMTVNTUAACAAAA==");
  CHECK(t[1].scheme == "negotiate");
  CHECK(t[1].token68 == "YIIB+w/x");

  std::vector<auth_challenge> bad;
  CHECK_FALSE(uplink::parse_challenges(R"(Digest realm="never closed)", bad));
  CHECK_FALSE(uplink::parse_challenges("Basic realm=\"x\" junk", bad));
  CHECK_FALSE(uplink::parse_challenges("Digest a=\"1\" b=\"2\"", bad));  // no comma
  std::vector<auth_challenge> empty;
  CHECK(uplink::parse_challenges(" , ,", empty));
  CHECK(empty.empty());
}

TEST_CASE("Digest answers as RFC 7616 3.9.1 computes, for SHA-256 and MD5", "[uplink][login]") {
  // The RFC's own example: Mufasa, "Circle of Life", GET /dir/index.html.
  const std::string challenge =
      R"(Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=ALGO, )"
      R"(nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")";
  const std::string cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
  std::string why;
  auto sha = parse(std::string(challenge).replace(challenge.find("ALGO"), 4, "SHA-256"));
  auto a = uplink::digest_authorization(sha[0], "Mufasa", "Circle of Life", "GET", "/dir/index.html", cnonce, why);
  REQUIRE(a);
  CHECK(a->find(R"(response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")") != std::string::npos);
  CHECK(a->find("qop=auth, nc=00000001") == std::string::npos);
  CHECK(a->find(R"(nc=00000001, cnonce=")" + cnonce + R"(", qop=auth)") != std::string::npos);
  CHECK(a->find(R"(opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")") != std::string::npos);
  auto md5 = parse(std::string(challenge).replace(challenge.find("ALGO"), 4, "MD5"));
  auto b = uplink::digest_authorization(md5[0], "Mufasa", "Circle of Life", "GET", "/dir/index.html", cnonce, why);
  REQUIRE(b);
  CHECK(b->find(R"(response="8ca523f5e9506fed4657c9700eebdbec")") != std::string::npos);

  // What it cannot do, it says.
  auto odd = parse(R"(Digest realm="r", nonce="n", algorithm=SHA-1)");
  CHECK_FALSE(uplink::digest_authorization(odd[0], "u", "p", "CONNECT", "m:443", "c", why));
  CHECK(why.find("unknown algorithm") != std::string::npos);
  auto int_only = parse(R"(Digest realm="r", nonce="n", qop="auth-int")");
  CHECK_FALSE(uplink::digest_authorization(int_only[0], "u", "p", "CONNECT", "m:443", "c", why));
  CHECK(why.find("auth-int") != std::string::npos);
}

TEST_CASE("the strongest scheme offered is chosen, and none is sent before the proxy asks", "[uplink][login]") {
  auto offered = parse(R"(Basic realm="corp", Digest realm="corp", nonce="n1", qop="auth", NTLM)");
  {
    proxy_login l(http_proxy("CORP\\alice", "pw"), "mid.example:443", fixed_cnonce("c"));
    CHECK(l.answer(offered) == proxy_login::next::send);
    CHECK(l.scheme() == "ntlm");
    // Type 1 names the user's domain; libntlm made it.
    auto raw = Botan::base64_decode(l.header().substr(5));
    CHECK(std::string(raw.begin(), raw.begin() + 8) == std::string("NTLMSSP\0", 8));
    CHECK(raw[8] == 1);
    CHECK(std::string(raw.begin(), raw.end()).find("CORP") != std::string::npos);
    CHECK(l.header().find("pw") == std::string::npos);
  }
  {
    proxy_login l(http_proxy("alice", "pw"), "mid.example:443", fixed_cnonce("c"));
    CHECK(l.answer(parse(R"(Basic realm="corp", Digest realm="corp", nonce="n1", qop="auth")")) ==
          proxy_login::next::send);
    CHECK(l.scheme() == "digest");
    CHECK(l.header().rfind(R"(Digest username="alice", realm="corp", uri="mid.example:443")", 0) == 0);
    // A second 407 is a refusal, unless the nonce was only stale.
    CHECK(l.answer(parse(R"(Digest realm="corp", nonce="n2", qop="auth", stale=true)")) == proxy_login::next::send);
    CHECK(l.header().find(R"(nonce="n2")") != std::string::npos);
    CHECK(l.answer(parse(R"(Digest realm="corp", nonce="n3", qop="auth")")) == proxy_login::next::give_up);
    CHECK(l.why() == "it refused the user name or password (Digest)");
  }
  {
    proxy_login l(http_proxy(), "mid.example:443", fixed_cnonce("c"));
    CHECK(l.answer(parse(R"(Basic realm="corp")")) == proxy_login::next::give_up);
    CHECK(l.why() == "it wants a login by \"basic\"; give a user name and password in the proxy URL");
  }
}

TEST_CASE("Negotiate is tried first, and without a ticket the next scheme serves", "[uplink][login]") {
  auto offered = parse(R"(Negotiate, Basic realm="corp")");
  uplink::login_hooks hooks = fixed_cnonce("c");
  std::string asked_host;
  bool have_ticket = true;
  hooks.negotiate = [&](const std::string& host, const std::string& server_token, std::string& why)
      -> std::optional<std::string> {
    asked_host = host;
    if (!have_ticket) {
      why = "No Kerberos credentials available";
      return std::nullopt;
    }
    return server_token.empty() ? "YIIGtoken" : "leg2";
  };
  {
    proxy_login l(http_proxy(), "mid.example:443", hooks);
    REQUIRE(l.answer(offered) == proxy_login::next::compute);
    l.compute();
    CHECK_FALSE(l.failed());
    CHECK(l.header() == "Negotiate YIIGtoken");
    CHECK(asked_host == "proxy.corp.example");
    CHECK_FALSE(l.needs_same_connection());
    // A further leg goes on the same connection.
    REQUIRE(l.answer(parse("Negotiate c2VydmVy")) == proxy_login::next::compute);
    l.compute();
    CHECK(l.header() == "Negotiate leg2");
    CHECK(l.needs_same_connection());
  }
  have_ticket = false;
  {
    proxy_login l(http_proxy("alice", "pw"), "mid.example:443", hooks);
    REQUIRE(l.answer(offered) == proxy_login::next::compute);
    l.compute();
    CHECK_FALSE(l.failed());
    CHECK(l.scheme() == "basic");
    CHECK(l.header() == "Basic YWxpY2U6cHc=");
  }
  {
    proxy_login l(http_proxy(), "mid.example:443", hooks);
    REQUIRE(l.answer(parse("Negotiate")) == proxy_login::next::compute);
    l.compute();
    CHECK(l.failed());
    CHECK(l.why() == "it wants a login by \"negotiate\" (Kerberos: No Kerberos credentials available); give a user "
                     "name and password in the proxy URL");
  }
}

TEST_CASE("an NTLM challenge from the network is checked before libntlm reads it", "[uplink][login][hostile]") {
  proxy_login l(http_proxy("alice", "pw"), "m:443", fixed_cnonce("c"));
  REQUIRE(l.answer(parse("NTLM")) == proxy_login::next::send);
  // A CHALLENGE whose target name points far outside the message.
  std::vector<std::uint8_t> msg(48, 0);
  std::copy_n("NTLMSSP", 8, msg.begin());
  msg[8] = 2;
  msg[12] = 0x10;                 // name length 16
  msg[16] = 0xf0, msg[17] = 0xff;  // at 65520
  auto b64 = Botan::base64_encode(msg.data(), msg.size());
  // Not read (ASan would see it), as if the proxy had named no domain.
  REQUIRE(l.answer(parse("NTLM " + b64)) == proxy_login::next::send);
  CHECK(Botan::base64_decode(l.header().substr(5))[8] == 3);
  // Not NTLM at all, or cut short: refused.
  proxy_login short_one(http_proxy("alice", "pw"), "m:443", fixed_cnonce("c"));
  REQUIRE(short_one.answer(parse("NTLM")) == proxy_login::next::send);
  CHECK(short_one.answer(parse("NTLM TlRMTVNTUAACAAAA")) == proxy_login::next::give_up);
  CHECK(short_one.why() == "its NTLM challenge is not usable: the challenge has 12 bytes");

  proxy_login ok(http_proxy("CORP\\alice", "pw"), "m:443", fixed_cnonce("c"));
  REQUIRE(ok.answer(parse("NTLM")) == proxy_login::next::send);
  msg[16] = 48, msg[17] = 0;
  msg.resize(64, 'D');
  REQUIRE(ok.answer(parse("NTLM " + Botan::base64_encode(msg.data(), msg.size()))) == proxy_login::next::send);
  auto raw = Botan::base64_decode(ok.header().substr(5));
  CHECK(raw[8] == 3);  // AUTHENTICATE
  CHECK(ok.needs_same_connection());
}

TEST_CASE("CONNECT through a login: the 407's body is read and the next request goes on the same connection",
          "[uplink][login]") {
  auto h = proxy_handshake::make(http_proxy("alice", "pw"), "mid.example", 443);
  const auto first = text(h->take_output());
  CHECK(first == "CONNECT mid.example:443 HTTP/1.1\r\nHost: mid.example:443\r\n\r\n");  // no credential yet
  CHECK(feed(*h, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"c\"\r\n"
                 "Content-Length: 10\r\n\r\n01234") == status::need_more);
  CHECK(h->take_output().empty());  // the body is not over yet
  CHECK(feed(*h, "56789") == status::need_more);
  const auto second = text(h->take_output());
  CHECK(header_of(second, "Proxy-Authorization") == "Basic YWxpY2U6cHc=");
  CHECK(feed(*h, "HTTP/1.1 200 Connection established\r\n\r\nX") == status::done);
  CHECK(h->leftover() == uplink::bytes{'X'});
}

TEST_CASE("a proxy that closes the connection after its 407 is dialled again", "[uplink][login]") {
  auto h = proxy_handshake::make(http_proxy("alice", "pw"), "mid.example", 443);
  h->take_output();
  CHECK(feed(*h, "HTTP/1.1 407 Proxy Authentication Required\r\nConnection: close\r\n"
                 "Proxy-Authenticate: Digest realm=\"c\", nonce=\"n\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n") ==
        status::reconnect);
  h->reconnected();
  CHECK(h->state() == status::need_more);
  CHECK(header_of(text(h->take_output()), "Proxy-Authorization").rfind("Digest username=\"alice\"", 0) == 0);
  // A body that runs to the end of the connection, or chunked, is not read:
  // a new connection is asked for at once.
  auto g = proxy_handshake::make(http_proxy("alice", "pw"), "mid.example", 443);
  g->take_output();
  CHECK(feed(*g, "HTTP/1.0 407 Login\r\nProxy-Authenticate: Basic realm=\"c\"\r\n\r\n<html>") == status::reconnect);
  auto k = proxy_handshake::make(http_proxy("alice", "pw"), "mid.example", 443);
  k->take_output();
  CHECK(feed(*k, "HTTP/1.1 407 Login\r\nProxy-Authenticate: Basic realm=\"c\"\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n") == status::reconnect);
  // A proxy that closes in the middle of a Content-Length body: the same.
  auto m = proxy_handshake::make(http_proxy("alice", "pw"), "mid.example", 443);
  m->take_output();
  CHECK(feed(*m, "HTTP/1.1 407 Login\r\nProxy-Authenticate: Basic realm=\"c\"\r\nContent-Length: 100\r\n\r\nab") ==
        status::need_more);
  m->eof();
  CHECK(m->state() == status::reconnect);
  // A refusal of the credentials ends it, naming the scheme, never the password.
  g->reconnected();
  g->take_output();
  CHECK(feed(*g, "HTTP/1.1 407 No\r\nProxy-Authenticate: Basic realm=\"c\"\r\nContent-Length: 0\r\n\r\n") ==
        status::failed);
  CHECK(g->error() == "the HTTP proxy answered 407 No: it refused the user name or password (Basic)");
}

TEST_CASE("NTLM's second leg cannot move to a new connection", "[uplink][login]") {
  auto h = proxy_handshake::make(http_proxy("alice", "pw"), "mid.example", 443);
  h->take_output();
  CHECK(feed(*h, "HTTP/1.1 407 A\r\nProxy-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n") == status::need_more);
  CHECK(header_of(text(h->take_output()), "Proxy-Authorization").rfind("NTLM TlRMTVNTUAAB", 0) == 0);
  std::vector<std::uint8_t> msg(48, 0);
  std::copy_n("NTLMSSP", 8, msg.begin());
  msg[8] = 2;
  CHECK(feed(*h, "HTTP/1.1 407 B\r\nConnection: close\r\nProxy-Authenticate: NTLM " +
                     Botan::base64_encode(msg.data(), msg.size()) + "\r\nContent-Length: 0\r\n\r\n") == status::failed);
  CHECK(h->error() == "the HTTP proxy answered 407 B: and closed the connection in the middle of the ntlm login (it "
                      "logs in per connection)");
}

TEST_CASE("CONNECT with Negotiate: the Kerberos step runs when asked, once, and the request goes on",
          "[uplink][login]") {
  int steps = 0;
  uplink::login_hooks hooks;
  hooks.negotiate = [&](const std::string&, const std::string&, std::string&) -> std::optional<std::string> {
    ++steps;
    return "dGlja2V0";
  };
  auto h = proxy_handshake::make(http_proxy(), "mid.example", 443, hooks);
  h->take_output();
  CHECK(feed(*h, "HTTP/1.1 407 Login\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n") ==
        status::compute);
  CHECK(steps == 0);  // not on the I/O thread: the caller runs compute()
  h->compute();
  CHECK(steps == 1);
  REQUIRE(h->state() == status::need_more);
  CHECK(header_of(text(h->take_output()), "Proxy-Authorization") == "Negotiate dGlja2V0");
  h->compute();  // nothing more to compute
  CHECK(steps == 1);
  CHECK(feed(*h, "HTTP/1.1 200 OK\r\n\r\n") == status::done);
}

TEST_CASE("the http carrier's requests log in by Basic, each carrying the credential once asked", "[uplink][login]") {
  uplink::request_login login(http_proxy("alice", "pw1"));
  CHECK(login.authorization("POST", "http://m/lstp/up").empty());  // nothing before the proxy asks
  REQUIRE(login.challenged({"Basic realm=\"corp\""}));
  CHECK(login.authorization("POST", "http://m/lstp/up") == "Basic YWxpY2U6cHcx");
  CHECK(login.authorization("GET", "http://m/lstp/down") == "Basic YWxpY2U6cHcx");
  // Asked again: the password was refused.
  CHECK_FALSE(login.challenged({"Basic realm=\"corp\""}));
  CHECK(login.why() == "it refused the user name or password (Basic)");
}

TEST_CASE("the http carrier's requests log in by Digest, counting them, and answer a stale nonce",
          "[uplink][login]") {
  uplink::login_hooks hooks;
  hooks.cnonce = [] { return std::string("c0ffee"); };
  uplink::request_login login(http_proxy("alice", "pw1"), hooks);
  // Digest is preferred to Basic when both are offered.
  REQUIRE(login.challenged({"Basic realm=\"corp\"", "Digest realm=\"corp\", nonce=\"n1\", qop=\"auth\""}));
  const auto first = login.authorization("POST", "http://m/lstp/up?s=1");
  const auto second = login.authorization("GET", "http://m/lstp/down?s=1");
  CHECK_THAT(first, Catch::StartsWith("Digest username=\"alice\"") && Catch::Contains("nc=00000001") &&
                        Catch::Contains("uri=\"http://m/lstp/up?s=1\"") && Catch::Contains("nonce=\"n1\""));
  CHECK_THAT(second, Catch::Contains("nc=00000002"));
  // The response is RFC 7616's, for this request's method, URI and count.
  std::string why;
  std::vector<auth_challenge> parsed;
  REQUIRE(uplink::parse_challenges("Digest realm=\"corp\", nonce=\"n1\", qop=\"auth\"", parsed));
  CHECK(second == *uplink::digest_authorization(parsed[0], "alice", "pw1", "GET", "http://m/lstp/down?s=1", "c0ffee",
                                                why, 2));
  // A stale nonce: answered again with the new one, counting from 1.
  REQUIRE(login.challenged({"Digest realm=\"corp\", nonce=\"n2\", qop=\"auth\", stale=true"}));
  const auto fresh = login.authorization("POST", "http://m/lstp/up?s=1");
  CHECK_THAT(fresh, Catch::Contains("nonce=\"n2\"") && Catch::Contains("nc=00000001"));
  // Refused without stale: the password is wrong.
  CHECK_FALSE(login.challenged({"Digest realm=\"corp\", nonce=\"n3\", qop=\"auth\""}));
  CHECK(login.why() == "it refused the user name or password (Digest)");
}

TEST_CASE("the http carrier cannot log in by NTLM or Kerberos, or without a user, and says so", "[uplink][login]") {
  uplink::request_login ntlm(http_proxy("CORP\\alice", "pw1"));
  CHECK_FALSE(ntlm.challenged({"NTLM", "Negotiate"}));
  CHECK_THAT(ntlm.why(), Catch::Contains("Basic or Digest only"));
  uplink::request_login nobody(http_proxy());
  CHECK_FALSE(nobody.challenged({"Basic realm=\"corp\""}));
  CHECK_THAT(nobody.why(), Catch::Contains("give a user name and password"));
  // No password in any message.
  CHECK(ntlm.why().find("pw1") == std::string::npos);
}
