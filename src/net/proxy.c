/* PROXY protocol v1 (text) and v2 (binary) header parser. */
#include "net/proxy.h"

#include <arpa/inet.h>

#define V1_MAX 107

static const char v2_sig[12] = "\r\n\r\n\0\r\nQUIT\n";
static const char v1_sig[6] = "PROXY ";

/* Decimal port: digits only, no leading zero, <= 65535. */
static int parse_port(const char *p, size_t n, uint16_t *out)
{
    unsigned v = 0;
    if (n == 0 || n > 5 || (n > 1 && p[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)(p[i] - '0') > 9)
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static int parse_addr(int family, const char *p, size_t n, struct sockaddr_storage *ss)
{
    char tmp[INET6_ADDRSTRLEN + 1];

    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        return inet_pton(AF_INET, tmp, &sin->sin_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    return inet_pton(AF_INET6, tmp, &sin6->sin6_addr) == 1 ? 0 : -1;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static ssize_t parse_v1(const char *buf, size_t len, cu_proxy_info_t *out)
{
    const char *lf = memchr(buf, '\n', len < V1_MAX ? len : V1_MAX);
    if (!lf)
        return len >= V1_MAX ? -1 : -2;
    if (lf == buf || lf[-1] != '\r')
        return -1;
    const char *end = lf - 1; /* the CR */
    const char *f[6];
    size_t fl[6], nf = 0;
    const char *p = buf;

    /* exactly single spaces between fields */
    while (p <= end && nf < 6) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *e = sp ? sp : end;
        f[nf] = p;
        fl[nf++] = (size_t)(e - p);
        p = e + 1;
        if (!sp)
            break;
    }
    memset(out, 0, sizeof(*out));
    out->version = 1;
    if (nf >= 2 && fl[1] == 7 && memcmp(f[1], "UNKNOWN", 7) == 0) {
        out->local = 1;
        out->family = AF_UNSPEC;
        return lf + 1 - buf;
    }
    if (nf != 6 || p <= end)
        return -1;
    int family;
    if (fl[1] == 4 && memcmp(f[1], "TCP4", 4) == 0)
        family = AF_INET;
    else if (fl[1] == 4 && memcmp(f[1], "TCP6", 4) == 0)
        family = AF_INET6;
    else
        return -1;
    uint16_t sport, dport;
    if (parse_addr(family, f[2], fl[2], &out->src) < 0 ||
        parse_addr(family, f[3], fl[3], &out->dst) < 0 || parse_port(f[4], fl[4], &sport) < 0 ||
        parse_port(f[5], fl[5], &dport) < 0)
        return -1;
    set_port(&out->src, sport);
    set_port(&out->dst, dport);
    out->family = family;
    return lf + 1 - buf;
}

static ssize_t parse_v2(const unsigned char *b, size_t len, cu_proxy_info_t *out)
{
    if (len < 16)
        return -2;
    unsigned ver = b[12] >> 4, cmd = b[12] & 15, fam = b[13] >> 4, proto = b[13] & 15;
    size_t alen = (size_t)b[14] << 8 | b[15];
    if (ver != 2 || cmd > 1)
        return -1;
    if (len < 16 + alen)
        return -2;
    memset(out, 0, sizeof(*out));
    out->version = 2;
    out->family = AF_UNSPEC;
    if (cmd == 0) { /* LOCAL: health check from the proxy itself */
        out->local = 1;
        return (ssize_t)(16 + alen);
    }
    if (proto != 1)
        return -1;
    const unsigned char *a = b + 16;
    if (fam == 1) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        if (alen < 12)
            return -1;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
        out->family = AF_INET;
    } else if (fam == 2) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
        if (alen < 36)
            return -1;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
        out->family = AF_INET6;
    } else if (fam == 0) {
        out->local = 1;
    } else {
        return -1;
    }
    return (ssize_t)(16 + alen);
}

ssize_t cu_proxy_parse(const char *buf, size_t len, int accept, cu_proxy_info_t *out)
{
    size_t n2 = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
    size_t n1 = len < sizeof(v1_sig) ? len : sizeof(v1_sig);
    int maybe2 = memcmp(buf, v2_sig, n2) == 0;
    int maybe1 = memcmp(buf, v1_sig, n1) == 0;

    if (maybe2 && n2 == sizeof(v2_sig))
        return (accept & CU_PROXY_ACCEPT_V2) ? parse_v2((const unsigned char *)buf, len, out) : -1;
    if (maybe1 && n1 == sizeof(v1_sig))
        return (accept & CU_PROXY_ACCEPT_V1) ? parse_v1(buf, len, out) : -1;
    if (maybe1 || maybe2)
        return -2;
    return 0;
}
