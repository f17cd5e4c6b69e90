/* dirty/stash: every operation through cu_stash_handle, as the arbiter runs STASH messages:
 * replies (RESPONSE values, ERROR types), insertion order, glob patterns, growth. */
#include "dirty/stash.h"
#include "t.h"

#include <stdio.h>

static cu_stash_t *S;
static cu_buf_t out;
static cu_tlv_t res; /* the last reply's "result" or "error" dict */
static uint8_t rtype;

/* Run op on table with an optional str key (NULL: none), int value (-1: none), pattern. */
static void run(int op, const char *table, const char *key, int64_t value, const char *pat)
{
    cu_buf_t m;
    cu_buf_init(&m, 64, 1 << 20);
    cu_tlv_put_dict(&m, 2 + (key != NULL) + (value >= 0) + (pat != NULL));
    cu_tlv_put_cstr(&m, "op");
    cu_tlv_put_int(&m, op);
    cu_tlv_put_cstr(&m, "table");
    cu_tlv_put_cstr(&m, table);
    if (key) {
        cu_tlv_put_cstr(&m, "key");
        cu_tlv_put_cstr(&m, key);
    }
    if (value >= 0) {
        cu_tlv_put_cstr(&m, "value");
        cu_tlv_put_int(&m, value);
    }
    if (pat) {
        cu_tlv_put_cstr(&m, "pattern");
        cu_tlv_put_cstr(&m, pat);
    }
    cu_tlv_t msg;
    CHECK(cu_tlv_read_full((const uint8_t *)cu_buf_head(&m), cu_buf_unread(&m), &msg) == CU_OK);
    out.pos = out.len = 0;
    CHECK(cu_stash_handle(S, &msg, 77, &out) == CU_OK);
    cu_dirty_hdr_t h;
    const uint8_t *f = (const uint8_t *)cu_buf_head(&out);
    CHECK(cu_dirty_hdr_decode(f, cu_buf_unread(&out), &h) == 16 && h.id == 77);
    CHECK(h.len + 16 == cu_buf_unread(&out));
    rtype = h.type;
    cu_tlv_t d;
    CHECK(cu_tlv_read_full(f + 16, h.len, &d) == CU_OK);
    CHECK(cu_tlv_dict_get(&d, h.type == CU_DIRTY_RESPONSE ? "result" : "error", &res));
    cu_buf_free(&m);
}

static int result_bool(void)
{
    return rtype == CU_DIRTY_RESPONSE && res.type == CU_TLV_BOOL ? res.b : -1;
}

static int error_is(const char *type)
{
    cu_tlv_t t;
    return rtype == CU_DIRTY_ERROR && cu_tlv_dict_get(&res, "error_type", &t) &&
           cu_tlv_str_eq(&t, type);
}

int main(void)
{
    S = cu_stash_create();
    cu_buf_init(&out, 256, 1 << 24);

    run(CU_STASH_GET, "t", "k", -1, NULL);
    CHECK(error_is("StashKeyNotFoundError"));
    run(CU_STASH_INFO, "t", NULL, -1, NULL);
    CHECK(error_is("StashTableNotFoundError"));
    run(CU_STASH_EXISTS, "t", NULL, -1, NULL);
    CHECK(result_bool() == 0);

    run(CU_STASH_PUT, "t", "user:1", 10, NULL);
    CHECK(result_bool() == 1);
    run(CU_STASH_PUT, "t", "user:2", 20, NULL);
    run(CU_STASH_PUT, "t", "other", 30, NULL);
    run(CU_STASH_PUT, "t", "user:1", 11, NULL); /* overwrite keeps its place */
    run(CU_STASH_GET, "t", "user:1", -1, NULL);
    CHECK(rtype == CU_DIRTY_RESPONSE && res.type == CU_TLV_INT && res.i == 11);
    run(CU_STASH_KEYS, "t", NULL, -1, NULL);
    CHECK(res.type == CU_TLV_LIST && res.count == 3);
    size_t off = 0;
    cu_tlv_t k;
    const char *order[] = {"user:1", "user:2", "other"};
    for (int i = 0; i < 3; i++)
        CHECK(cu_tlv_next(&res, &off, &k) && cu_tlv_str_eq(&k, order[i]));
    run(CU_STASH_KEYS, "t", NULL, -1, "user:*");
    CHECK(res.type == CU_TLV_LIST && res.count == 2);
    run(CU_STASH_EXISTS, "t", "other", -1, NULL);
    CHECK(result_bool() == 1);
    run(CU_STASH_DELETE, "t", "other", -1, NULL);
    CHECK(result_bool() == 1);
    run(CU_STASH_DELETE, "t", "other", -1, NULL);
    CHECK(result_bool() == 0);
    run(CU_STASH_INFO, "t", NULL, -1, NULL);
    cu_tlv_t size;
    CHECK(cu_tlv_dict_get(&res, "size", &size) && size.i == 2);

    /* growth past the initial buckets, then every key still found */
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        run(CU_STASH_PUT, "big", key, i, NULL);
    }
    int found = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        run(CU_STASH_GET, "big", key, -1, NULL);
        found += rtype == CU_DIRTY_RESPONSE && res.i == i;
    }
    CHECK(found == 5000);
    CHECK(cu_stash_entries(S) == 5002);

    run(CU_STASH_ENSURE, "empty", NULL, -1, NULL);
    run(CU_STASH_TABLES, "", NULL, -1, NULL);
    CHECK(res.type == CU_TLV_LIST && res.count == 3);
    run(CU_STASH_CLEAR, "big", NULL, -1, NULL);
    CHECK(cu_stash_entries(S) == 2);
    run(CU_STASH_DELETE_TABLE, "t", NULL, -1, NULL);
    CHECK(result_bool() == 1);
    run(CU_STASH_DELETE_TABLE, "t", NULL, -1, NULL);
    CHECK(result_bool() == 0);
    run(CU_STASH_TABLES, "", NULL, -1, NULL);
    CHECK(res.count == 2);
    run(CU_STASH_PUT, "after", "x", 1, NULL); /* the tail pointer survived the delete */
    run(CU_STASH_TABLES, "", NULL, -1, NULL);
    CHECK(res.count == 3);
    run(99, "t", NULL, -1, NULL);
    CHECK(error_is("DirtyError"));

    cu_buf_free(&out);
    cu_stash_destroy(S);
    return t_done("test_stash");
}
