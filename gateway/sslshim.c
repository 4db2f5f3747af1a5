/*
 * sslshim.c — makes civetweb's TLS work with Debian 12's OpenSSL 3.
 *
 * Debian's libcivetweb 1.15 is built with the OpenSSL 1.1 API and loads
 * OpenSSL at run time: dlopen("libssl.so") then dlsym for each function. One
 * of them, SSL_get_peer_certificate, no longer exists as a symbol in OpenSSL 3
 * (it became a macro for SSL_get1_peer_certificate), so civetweb calls a NULL
 * pointer on the first HTTPS request.
 *
 * This library is built with the file name and SONAME "libssl.so", depends on
 * the real libssl.so.3, and adds the missing symbol. rtgw links it (RUNPATH),
 * so it is already loaded when civetweb asks for "libssl.so": the loader hands
 * civetweb this object, and dlsym finds every other function in its
 * dependency, the real libssl.
 */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate
X509 *SSL_get_peer_certificate(const SSL *s);
X509 *SSL_get_peer_certificate(const SSL *s)
{
    return SSL_get1_peer_certificate(s);
}

/* Referenced by rtgw so the linker keeps the dependency. */
int rt_sslshim_present(void);
int rt_sslshim_present(void)
{
    return 1;
}
