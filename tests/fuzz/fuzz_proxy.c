/* libFuzzer target: the PROXY header parser; every prefix of an accepted header is
 * incomplete or the same verdict. */
#include "net/proxy.h"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cu_proxy_info_t pi;
    if (size < 1)
        return 0;
    int accept = data[0] % 3 + 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    ssize_t rc = cu_proxy_parse(in, len, accept, &pi);
    assert(rc >= -2 && rc <= (ssize_t)len);
    if (rc > 0) {
        assert(pi.version == 1 || pi.version == 2);
        for (size_t n = 0; n < (size_t)rc; n++) {
            ssize_t p = cu_proxy_parse(in, n, accept, &pi);
            assert(p == -2 || p == -1);
        }
    }
    return 0;
}
