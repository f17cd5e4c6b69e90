/* permessage-deflate: offer negotiation (RFC 7692 parameters) and a compress/inflate round
 * trip with the limits (corrupt data, output past the cap). */
#include "http/ws_deflate.h"
#include "t.h"

static int nego(const char *offer, char *resp)
{
    return cu_ws_deflate_negotiate(offer, strlen(offer), resp, 96);
}

int main(void)
{
    char resp[96];
    CHECK(nego("permessage-deflate", resp) == 1);
    CHECK(strcmp(resp, "permessage-deflate; server_no_context_takeover") == 0);
    CHECK(nego("permessage-deflate; client_max_window_bits", resp) == 1);
    CHECK(nego("Permessage-Deflate ; client_no_context_takeover; server_no_context_takeover",
               resp) == 1);
    CHECK(nego("x-webkit-deflate-frame", resp) == 0);
    CHECK(nego("permessage-deflate; server_max_window_bits=10", resp) == 0);
    CHECK(nego("permessage-deflate; foo=1", resp) == 0);
    /* the first acceptable offer wins */
    CHECK(nego("permessage-deflate; server_max_window_bits=9, permessage-deflate", resp) == 1);
    CHECK(nego("", resp) == 0);
    CHECK(cu_ws_deflate_negotiate("permessage-deflate", 18, resp, 10) == 0); /* no room */

    cu_ws_deflate_t d = {0};
    cu_buf_t z, out;
    cu_buf_init(&z, 0, 1 << 20);
    cu_buf_init(&out, 0, 1 << 22);
    char msg[20000];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (char)("abcdefgh"[i % 8] + (i % 1000 == 0));
    for (int round = 0; round < 3; round++) { /* deflater reset, inflater kept per message */
        z.pos = z.len = 0;
        out.pos = out.len = 0;
        CHECK(cu_ws_deflate(&d, (const uint8_t *)msg, sizeof(msg), &z) == CU_OK);
        CHECK(cu_buf_unread(&z) > 0 && cu_buf_unread(&z) < sizeof(msg) / 10);
        CHECK(cu_ws_inflate(&d, (const uint8_t *)cu_buf_head(&z), cu_buf_unread(&z), &out,
                            sizeof(msg)) == CU_OK);
        CHECK(cu_buf_unread(&out) == sizeof(msg) &&
              memcmp(cu_buf_head(&out), msg, sizeof(msg)) == 0);
    }
    out.pos = out.len = 0;
    CHECK(cu_ws_inflate(&d, (const uint8_t *)cu_buf_head(&z), cu_buf_unread(&z), &out, 1000) ==
          CU_DONE);
    cu_ws_deflate_free(&d);
    cu_ws_deflate_t d2 = {0};
    out.pos = out.len = 0;
    CHECK(cu_ws_inflate(&d2, (const uint8_t *)"\xff\xfe\xfd\xfc", 4, &out, 1000) == CU_ERROR);
    cu_ws_deflate_free(&d2);
    cu_buf_free(&z);
    cu_buf_free(&out);
    return t_done("test_ws_deflate");
}
