#include "broker/auth/scram.h"

#include <gtest/gtest.h>

namespace mqttd::broker::auth {
namespace {

// RFC 7677 section 3: user "user", password "pencil".
constexpr std::string_view kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kServerFirst =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kClientFinal =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

std::optional<ScramCredential> rfc_credential() {
    auto salt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    EXPECT_TRUE(salt);
    return make_scram_credential("pencil", *salt, 4096);
}

TEST(Scram, Rfc7677Exchange) {
    auto cred = rfc_credential();
    ASSERT_TRUE(cred);
    ScramServer s;
    auto user = s.start(kClientFirst);
    ASSERT_TRUE(user) << user.error();
    EXPECT_EQ(*user, "user");
    EXPECT_EQ(s.challenge(cred, kServerNonce), kServerFirst);
    auto final = s.finish(kClientFinal);
    ASSERT_TRUE(final) << final.error();
    EXPECT_EQ(*final, kServerFinal);
}

TEST(Scram, WrongProofUnknownUserAndTamperingFail) {
    auto cred = rfc_credential();
    {
        ScramServer s;
        ASSERT_TRUE(s.start(kClientFirst));
        s.challenge(make_scram_credential("not pencil", cred->salt, 4096), kServerNonce);
        EXPECT_FALSE(s.finish(kClientFinal)) << "a proof for another password";
    }
    {
        ScramServer s;
        ASSERT_TRUE(s.start(kClientFirst));
        std::string first = s.challenge(std::nullopt, kServerNonce);
        EXPECT_TRUE(first.starts_with("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s="))
                << "an unknown user gets a challenge like any other";
        EXPECT_FALSE(s.finish(kClientFinal));
    }
    {
        ScramServer s;
        ASSERT_TRUE(s.start(kClientFirst));
        s.challenge(cred, "another-nonce");
        EXPECT_FALSE(s.finish(kClientFinal)) << "a nonce the server did not give";
    }
    {
        ScramServer s;
        ASSERT_TRUE(s.start(kClientFirst));
        s.challenge(cred, kServerNonce);
        std::string tampered(kClientFinal);
        tampered.replace(0, 6, "c=eSws");  // claims channel binding "y,,"
        EXPECT_FALSE(s.finish(tampered));
    }
}

TEST(Scram, MalformedClientFirstIsRefused) {
    for (std::string_view bad :
         {"", "n,", "p=tls-unique,,n=user,r=abc", "n,,r=abc,n=user", "n,,n=,r=abc",
          "n,,n=us=er,r=abc", "n,,n=user,r=", "n,,m=ext,n=user,r=abc", "n,a=other,n=user,r=abc"}) {
        ScramServer s;
        EXPECT_FALSE(s.start(bad)) << bad;
    }
    ScramServer s;
    auto user = s.start("y,,n=a=2Cb=3Dc,r=xyz");
    ASSERT_TRUE(user);
    EXPECT_EQ(*user, "a,b=c");
}

TEST(Scram, CredentialRoundTripAndBase64) {
    auto c = make_scram_credential("secret", 4096);
    ASSERT_TRUE(c);
    auto back = decode_scram_credential(encode_scram_credential(*c));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->iterations, 4096u);
    EXPECT_EQ(back->salt, c->salt);
    EXPECT_EQ(back->stored_key, c->stored_key);
    EXPECT_EQ(back->server_key, c->server_key);
    EXPECT_FALSE(decode_scram_credential("scram-sha-256$0$aa$bb$cc"));
    EXPECT_FALSE(decode_scram_credential("pbkdf2-sha256$1$aa$bb"));
    EXPECT_EQ(base64_encode("biws-check"), "Yml3cy1jaGVjaw==");
    EXPECT_EQ(base64_decode("Yml3cy1jaGVjaw=="), "biws-check");
    EXPECT_EQ(base64_decode("biws"), "n,,");
    EXPECT_FALSE(base64_decode("b!ws"));
    EXPECT_FALSE(base64_decode("biw"));
}

}  // namespace
}  // namespace mqttd::broker::auth
