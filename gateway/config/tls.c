#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t cap, const char *fmt, const char *a, const char *b)
{
    snprintf(err, cap, fmt, a, b ? b : "");
    return -1;
}

int rt_tls_check(const char *cert_path, const char *key_path, const char *host, int64_t now_s,
                 char *err, size_t errcap, char *warn, size_t warncap)
{
    if (warncap)
        warn[0] = 0;
    FILE *cf = fopen(cert_path, "r");
    if (!cf)
        return fail(err, errcap, "RTGW_TLS_CERT: cannot read %s: %s", cert_path, strerror(errno));
    X509 *cert = PEM_read_X509(cf, NULL, NULL, NULL);
    fclose(cf);
    if (!cert)
        return fail(err, errcap, "RTGW_TLS_CERT: %s holds no PEM certificate%s", cert_path, "");
    FILE *kf = fopen(key_path, "r");
    if (!kf) {
        X509_free(cert);
        return fail(err, errcap, "RTGW_TLS_KEY: cannot read %s: %s", key_path, strerror(errno));
    }
    EVP_PKEY *key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
    fclose(kf);
    int rc = 0;
    if (!key) {
        rc = fail(err, errcap, "RTGW_TLS_KEY: %s holds no unencrypted PEM private key%s", key_path,
                  "");
        goto out;
    }
    if (X509_check_private_key(cert, key) != 1) {
        rc = fail(err, errcap, "RTGW_TLS_KEY: the key in %s does not match the certificate in %s",
                  key_path, cert_path);
        goto out;
    }
    time_t now = (time_t)now_s;
    if (X509_cmp_time(X509_get0_notAfter(cert), &now) < 0) {
        rc = fail(err, errcap, "RTGW_TLS_CERT: the certificate in %s has expired; renew it%s",
                  cert_path, "");
        goto out;
    }
    if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0) {
        rc = fail(err, errcap,
                  "RTGW_TLS_CERT: the certificate in %s is not valid yet (check the clock)%s",
                  cert_path, "");
        goto out;
    }
    if (host && *host && X509_check_host(cert, host, strlen(host), 0, NULL) != 1 &&
        X509_check_ip_asc(cert, host, 0) != 1) {
        rc =
            fail(err, errcap,
                 "RTGW_TLS_CERT: the certificate does not cover %s (the host of RTGW_PUBLIC_URL)%s",
                 host, "");
        goto out;
    }
    time_t soon = now + 14 * 86400;
    if (X509_cmp_time(X509_get0_notAfter(cert), &soon) < 0 && warncap)
        snprintf(warn, warncap, "the certificate in %s expires within 14 days", cert_path);
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    ERR_clear_error();
    return rc;
}
