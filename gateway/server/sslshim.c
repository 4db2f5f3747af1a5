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
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/types.h>
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate
X509 *SSL_get_peer_certificate(const SSL *s);
X509 *SSL_get_peer_certificate(const SSL *s)
{
    return SSL_get1_peer_certificate(s);
}

/* rtgw follows a WebSocket client's frame headers in the bytes civetweb reads
 * (server.c, "client frame guard"); over TLS those bytes come from SSL_read,
 * which civetweb also looks up in this object. The hook returns non-zero to
 * fail the read. */
static int (*read_hook)(int fd, const void *buf, ssize_t n);

void rt_sslshim_set_read_hook(int (*hook)(int fd, const void *buf, ssize_t n));
void rt_sslshim_set_read_hook(int (*hook)(int fd, const void *buf, ssize_t n))
{
    read_hook = hook;
}

int SSL_read(SSL *s, void *buf, int num)
{
    static int (*real_read)(SSL *, void *, int);
    if (!real_read)
        real_read = (int (*)(SSL *, void *, int))dlsym(RTLD_NEXT, "SSL_read");
    int n = real_read(s, buf, num);
    if (n > 0 && read_hook && read_hook(SSL_get_fd(s), buf, n) != 0) {
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}

/* Referenced by rtgw so the linker keeps the dependency. */
int rt_sslshim_present(void);
int rt_sslshim_present(void)
{
    return 1;
}
