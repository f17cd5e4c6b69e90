/* The stash tables (see stash.h): a list of named tables, each a hash of encoded keys to
 * encoded values that also keeps insertion order, as the Python dicts of gunicorn do. */
#include "dirty/stash.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry_s {
    struct entry_s *hnext;       /* hash chain */
    struct entry_s *prev, *next; /* insertion order */
    uint64_t hash;
    uint8_t *key; /* encoded TLV */
    size_t klen;
    uint8_t *val; /* encoded TLV */
    size_t vlen;
} entry_t;

typedef struct table_s {
    struct table_s *next;
    char *name;
    size_t nlen;
    entry_t **buckets;
    size_t nbuckets, size;
    entry_t *first, *last;
} table_t;

struct cu_stash_s {
    table_t *tables, *tail;
};

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

cu_stash_t *cu_stash_create(void)
{
    return cu_xcalloc(1, sizeof(cu_stash_t));
}

static void table_clear(table_t *t)
{
    for (entry_t *e = t->first, *n; e; e = n) {
        n = e->next;
        cu_free(e->key);
        cu_free(e->val);
        cu_free(e);
    }
    memset(t->buckets, 0, t->nbuckets * sizeof(*t->buckets));
    t->first = t->last = NULL;
    t->size = 0;
}

static void table_free(table_t *t)
{
    table_clear(t);
    cu_free(t->buckets);
    cu_free(t->name);
    cu_free(t);
}

void cu_stash_destroy(cu_stash_t *s)
{
    if (!s)
        return;
    for (table_t *t = s->tables, *n; t; t = n) {
        n = t->next;
        table_free(t);
    }
    cu_free(s);
}

size_t cu_stash_entries(const cu_stash_t *s)
{
    size_t n = 0;
    for (const table_t *t = s->tables; t; t = t->next)
        n += t->size;
    return n;
}

static table_t *find_table(cu_stash_t *s, const cu_tlv_t *name, table_t **prev)
{
    table_t *p = NULL;
    for (table_t *t = s->tables; t; p = t, t = t->next) {
        if (t->nlen == name->len && memcmp(t->name, name->p, name->len) == 0) {
            if (prev)
                *prev = p;
            return t;
        }
    }
    return NULL;
}

static table_t *ensure_table(cu_stash_t *s, const cu_tlv_t *name)
{
    table_t *t = find_table(s, name, NULL);
    if (t)
        return t;
    t = cu_xcalloc(1, sizeof(*t));
    t->name = cu_xmalloc(name->len + 1);
    memcpy(t->name, name->p, name->len);
    t->name[name->len] = '\0';
    t->nlen = name->len;
    t->nbuckets = 16;
    t->buckets = cu_xcalloc(t->nbuckets, sizeof(*t->buckets));
    if (s->tail)
        s->tail->next = t;
    else
        s->tables = t;
    s->tail = t;
    return t;
}

static entry_t *find_entry(table_t *t, const uint8_t *k, size_t n, uint64_t h)
{
    for (entry_t *e = t->buckets[h & (t->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->klen == n && memcmp(e->key, k, n) == 0)
            return e;
    return NULL;
}

static void grow(table_t *t)
{
    size_t nb = t->nbuckets * 2;
    entry_t **b = cu_xcalloc(nb, sizeof(*b));
    for (entry_t *e = t->first; e; e = e->next) {
        e->hnext = b[e->hash & (nb - 1)];
        b[e->hash & (nb - 1)] = e;
    }
    cu_free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

static uint8_t *dup(const uint8_t *p, size_t n)
{
    uint8_t *d = cu_xmalloc(n ? n : 1);
    memcpy(d, p, n);
    return d;
}

static void put(table_t *t, const cu_tlv_t *k, const cu_tlv_t *v)
{
    uint64_t h = fnv(k->raw, k->raw_len);
    entry_t *e = find_entry(t, k->raw, k->raw_len, h);
    if (e) {
        cu_free(e->val);
        e->val = dup(v->raw, v->raw_len);
        e->vlen = v->raw_len;
        return;
    }
    if (t->size + 1 > t->nbuckets)
        grow(t);
    e = cu_xcalloc(1, sizeof(*e));
    e->hash = h;
    e->key = dup(k->raw, k->raw_len);
    e->klen = k->raw_len;
    e->val = dup(v->raw, v->raw_len);
    e->vlen = v->raw_len;
    e->hnext = t->buckets[h & (t->nbuckets - 1)];
    t->buckets[h & (t->nbuckets - 1)] = e;
    e->prev = t->last;
    if (t->last)
        t->last->next = e;
    else
        t->first = e;
    t->last = e;
    t->size++;
}

static int del(table_t *t, const cu_tlv_t *k)
{
    uint64_t h = fnv(k->raw, k->raw_len);
    entry_t **pp = &t->buckets[h & (t->nbuckets - 1)];
    for (entry_t *e = *pp; e; pp = &e->hnext, e = e->hnext) {
        if (e->hash != h || e->klen != k->raw_len || memcmp(e->key, k->raw, e->klen) != 0)
            continue;
        *pp = e->hnext;
        if (e->prev)
            e->prev->next = e->next;
        else
            t->first = e->next;
        if (e->next)
            e->next->prev = e->prev;
        else
            t->last = e->prev;
        cu_free(e->key);
        cu_free(e->val);
        cu_free(e);
        t->size--;
        return 1;
    }
    return 0;
}

/* str(key) for messages and fnmatch: the text of a str key, else a short rendering. */
static void key_text(const uint8_t *raw, size_t n, char *out, size_t cap)
{
    cu_tlv_t k;
    if (cu_tlv_read(raw, n, &k) < 0) {
        snprintf(out, cap, "?");
    } else if (k.type == CU_TLV_STR) {
        size_t m = k.len < cap - 1 ? k.len : cap - 1;
        memcpy(out, k.p, m);
        out[m] = '\0';
    } else if (k.type == CU_TLV_INT) {
        snprintf(out, cap, "%lld", (long long)k.i);
    } else if (k.type == CU_TLV_NONE) {
        snprintf(out, cap, "None");
    } else if (k.type == CU_TLV_BOOL) {
        snprintf(out, cap, "%s", k.b ? "True" : "False");
    } else {
        snprintf(out, cap, "<%s>", k.type == CU_TLV_FLOAT ? "float" : "value");
    }
}

static const uint8_t none_raw[1] = {CU_TLV_NONE};

int cu_stash_handle(cu_stash_t *s, const cu_tlv_t *msg, uint64_t id, cu_buf_t *out)
{
    cu_tlv_t op, name, key, val, pat;
    char text[256], msgbuf[512];
    int64_t o = cu_tlv_dict_get(msg, "op", &op) && op.type == CU_TLV_INT ? op.i : -1;
    if (!cu_tlv_dict_get(msg, "table", &name) || name.type != CU_TLV_STR) {
        static const uint8_t empty[] = {CU_TLV_STR, 0, 0, 0, 0};
        cu_tlv_read(empty, sizeof(empty), &name);
    }
    int have_key = cu_tlv_dict_get(msg, "key", &key);
    if (!have_key)
        cu_tlv_read(none_raw, 1, &key);
    if (!cu_tlv_dict_get(msg, "value", &val))
        cu_tlv_read(none_raw, 1, &val);
    int have_pat = cu_tlv_dict_get(msg, "pattern", &pat) && pat.type == CU_TLV_STR;

    table_t *t = find_table(s, &name, NULL);
    size_t at = cu_dirty_frame_begin(out);
    int bad = at == (size_t)-1;
    bad = bad || cu_tlv_put_dict(out, 1) || cu_tlv_put_cstr(out, "result");
    switch (o) {
    case CU_STASH_PUT:
        put(ensure_table(s, &name), &key, &val);
        bad = bad || cu_tlv_put_bool(out, 1);
        break;
    case CU_STASH_GET: {
        entry_t *e = t ? find_entry(t, key.raw, key.raw_len, fnv(key.raw, key.raw_len)) : NULL;
        if (!e) {
            key_text(key.raw, key.raw_len, text, sizeof(text));
            snprintf(msgbuf, sizeof(msgbuf), "Key not found: %s", text);
            goto error_keynf;
        }
        bad = bad || cu_tlv_put_raw(out, e->val, e->vlen);
        break;
    }
    case CU_STASH_DELETE: bad = bad || cu_tlv_put_bool(out, t && del(t, &key)); break;
    case CU_STASH_KEYS: {
        uint32_t n = 0;
        size_t lat = out->len - out->pos;
        bad = bad || cu_tlv_put_list(out, 0);
        for (entry_t *e = t ? t->first : NULL; e && !bad; e = e->next) {
            if (have_pat) {
                char p[256];
                size_t m = pat.len < sizeof(p) - 1 ? pat.len : sizeof(p) - 1;
                memcpy(p, pat.p, m);
                p[m] = '\0';
                key_text(e->key, e->klen, text, sizeof(text));
                if (fnmatch(p, text, 0) != 0)
                    continue;
            }
            bad = cu_tlv_put_raw(out, e->key, e->klen);
            n++;
        }
        if (!bad) {
            uint8_t *c = (uint8_t *)out->data + out->pos + lat + 1;
            c[0] = (uint8_t)(n >> 24), c[1] = (uint8_t)(n >> 16), c[2] = (uint8_t)(n >> 8);
            c[3] = (uint8_t)n;
        }
        break;
    }
    case CU_STASH_CLEAR:
        if (t)
            table_clear(t);
        bad = bad || cu_tlv_put_bool(out, 1);
        break;
    case CU_STASH_INFO:
        if (!t) {
            snprintf(msgbuf, sizeof(msgbuf), "Table not found: %.*s", (int)name.len,
                     (const char *)name.p);
            goto error_tablenf;
        }
        bad = bad || cu_tlv_put_dict(out, 2) || cu_tlv_put_cstr(out, "size") ||
              cu_tlv_put_int(out, (int64_t)t->size) || cu_tlv_put_cstr(out, "table") ||
              cu_tlv_put_str(out, t->name, t->nlen);
        break;
    case CU_STASH_ENSURE:
        ensure_table(s, &name);
        bad = bad || cu_tlv_put_bool(out, 1);
        break;
    case CU_STASH_DELETE_TABLE: {
        table_t *prev = NULL;
        t = find_table(s, &name, &prev);
        if (t) {
            if (prev)
                prev->next = t->next;
            else
                s->tables = t->next;
            if (s->tail == t)
                s->tail = prev;
            table_free(t);
        }
        bad = bad || cu_tlv_put_bool(out, t != NULL);
        break;
    }
    case CU_STASH_TABLES: {
        uint32_t n = 0;
        for (table_t *x = s->tables; x; x = x->next)
            n++;
        bad = bad || cu_tlv_put_list(out, n);
        for (table_t *x = s->tables; x && !bad; x = x->next)
            bad = cu_tlv_put_str(out, x->name, x->nlen);
        break;
    }
    case CU_STASH_EXISTS: {
        int r = t != NULL;
        if (r && have_key && key.type != CU_TLV_NONE)
            r = find_entry(t, key.raw, key.raw_len, fnv(key.raw, key.raw_len)) != NULL;
        bad = bad || cu_tlv_put_bool(out, r);
        break;
    }
    default:
        snprintf(msgbuf, sizeof(msgbuf), "Unknown stash operation: %lld", (long long)o);
        out->len = out->pos + at;
        return cu_dirty_put_error(out, id, "DirtyError", msgbuf, NULL, NULL, 0, NULL, 0);
    }
    return bad ? CU_ERROR : cu_dirty_frame_end(out, at, CU_DIRTY_RESPONSE, id);

error_keynf:
    out->len = out->pos + at;
    return cu_dirty_put_error(out, id, "StashKeyNotFoundError", msgbuf, NULL, NULL, 0, NULL, 0);
error_tablenf:
    out->len = out->pos + at;
    return cu_dirty_put_error(out, id, "StashTableNotFoundError", msgbuf, NULL, NULL, 0, NULL, 0);
}
