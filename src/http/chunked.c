/* Chunked transfer-coding decoder: one explicit state machine over the framing bytes,
 * body bytes handed back as slices of the input. */
#include "http/chunked.h"

#define CHUNK_MAX_SIZE     ((UINT64_C(1) << 62) - 1)
#define CHUNK_DEFAULT_LINE 4096
#define CHUNK_DEFAULT_TRLR 8190

enum {
    S_SIZE_START = 0, /* first hex digit of a chunk size */
    S_SIZE,           /* more hex digits */
    S_SIZE_BWS,       /* whitespace after the size: only before ';' */
    S_EXT_PRE_NAME,   /* after ';' */
    S_EXT_NAME,
    S_EXT_POST_NAME, /* whitespace after a name: '=' or ';' must follow */
    S_EXT_PRE_VAL,   /* after '=' */
    S_EXT_TOKEN,
    S_EXT_AFTER_VAL, /* whitespace after a value: ';' must follow */
    S_EXT_QS,        /* inside a quoted-string */
    S_EXT_QP,        /* after '\' in a quoted-string */
    S_EXT_QS_END,    /* after the closing quote */
    S_SIZE_LF,       /* CR of the size line seen */
    S_DATA,
    S_DATA_CR,
    S_DATA_LF,
    S_TRAILER_START, /* start of a trailer line, or of the final empty line */
    S_TR_NAME,
    S_TR_VALUE,
    S_TR_LF,
    S_FINAL_LF,
    S_DONE,
    S_ERROR,
};

/* RFC 9110 6.5.1: fields that alter framing, routing or authentication. */
static const char *const forbidden[] = {"host",    "content-length", "transfer-encoding",
                                        "trailer", "authorization",  "te"};
#define ALL_FORBIDDEN ((1u << CU_NELEM(forbidden)) - 1)

static int tchar(unsigned char c)
{
    if ((unsigned char)((c | 0x20) - 'a') < 26 || (unsigned char)(c - '0') < 10)
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int hexval(unsigned char c)
{
    if ((unsigned char)(c - '0') < 10)
        return c - '0';
    c |= 0x20;
    if ((unsigned char)(c - 'a') < 6)
        return c - 'a' + 10;
    return -1;
}

void cu_chunked_init(cu_chunked_t *d)
{
    size_t max_line = d->max_line, max_trailer = d->max_trailer;
    memset(d, 0, sizeof(*d));
    d->max_line = max_line ? max_line : CHUNK_DEFAULT_LINE;
    d->max_trailer = max_trailer ? max_trailer : CHUNK_DEFAULT_TRLR;
}

static int fail(cu_chunked_t *d, int e, size_t i, size_t *consumed)
{
    d->state = S_ERROR;
    d->error = e;
    *consumed = i;
    return CU_ERROR;
}

/* Narrow the forbidden-name candidates with the name's byte at position `pos`. */
static unsigned narrow(unsigned cand, size_t pos, unsigned char c)
{
    c = (unsigned char)((unsigned char)(c - 'A') < 26 ? c | 0x20 : c);
    for (unsigned k = 0; k < CU_NELEM(forbidden); k++)
        if ((cand & (1u << k)) && (pos >= strlen(forbidden[k]) || forbidden[k][pos] != c))
            cand &= ~(1u << k);
    return cand;
}

static int forbidden_match(unsigned cand, size_t len)
{
    for (unsigned k = 0; k < CU_NELEM(forbidden); k++)
        if ((cand & (1u << k)) && strlen(forbidden[k]) == len)
            return 1;
    return 0;
}

int cu_chunked_decode(cu_chunked_t *d, const char *in, size_t len, size_t *consumed, cu_str_t *data)
{
    size_t i = 0;
    int h;

    if (d->max_line == 0)
        d->max_line = CHUNK_DEFAULT_LINE;
    if (d->max_trailer == 0)
        d->max_trailer = CHUNK_DEFAULT_TRLR;
    if (d->state == S_ERROR)
        return fail(d, d->error, 0, consumed);
    if (d->state == S_DONE) {
        *consumed = 0;
        return CU_DONE;
    }

    while (i < len) {
        if (d->state == S_DATA) {
            size_t n = len - i;
            if (n > d->remaining)
                n = (size_t)d->remaining;
            data->p = in + i;
            data->len = n;
            d->remaining -= n;
            if (d->remaining == 0)
                d->state = S_DATA_CR;
            *consumed = i + n;
            return CU_OK;
        }

        unsigned char c = (unsigned char)in[i++];
        if (d->state <= S_SIZE_LF && ++d->line_len > d->max_line)
            return fail(d, CU_CHUNKED_E_SIZE, i, consumed);
        if (d->state >= S_TRAILER_START && ++d->trailer_bytes > d->max_trailer)
            return fail(d, CU_CHUNKED_E_LIMIT_TRAILER, i, consumed);

        switch (d->state) {
        case S_SIZE_START:
            if ((h = hexval(c)) < 0)
                return fail(d, CU_CHUNKED_E_SIZE, i, consumed);
            d->remaining = (uint64_t)h;
            d->state = S_SIZE;
            break;
        case S_SIZE:
            if ((h = hexval(c)) >= 0) {
                if (d->remaining > (CHUNK_MAX_SIZE >> 4))
                    return fail(d, CU_CHUNKED_E_SIZE, i, consumed);
                d->remaining = d->remaining << 4 | (uint64_t)h;
            } else if (c == '\r') {
                d->state = S_SIZE_LF;
            } else if (c == ';') {
                d->state = S_EXT_PRE_NAME;
            } else if (c == ' ' || c == '\t') {
                d->state = S_SIZE_BWS;
            } else {
                return fail(d, CU_CHUNKED_E_SIZE, i, consumed);
            }
            break;
        case S_SIZE_BWS:
            if (c == ';')
                d->state = S_EXT_PRE_NAME;
            else if (c != ' ' && c != '\t')
                return fail(d, CU_CHUNKED_E_SIZE, i, consumed);
            break;
        case S_EXT_PRE_NAME:
            if (tchar(c))
                d->state = S_EXT_NAME;
            else if (c != ' ' && c != '\t')
                return fail(d, CU_CHUNKED_E_EXTENSION, i, consumed);
            break;
        case S_EXT_NAME:
        case S_EXT_TOKEN:
            if (tchar(c))
                break;
            if (c == ';')
                d->state = S_EXT_PRE_NAME;
            else if (c == '\r')
                d->state = S_SIZE_LF;
            else if (c == '=' && d->state == S_EXT_NAME)
                d->state = S_EXT_PRE_VAL;
            else if (c == ' ' || c == '\t')
                d->state = d->state == S_EXT_NAME ? S_EXT_POST_NAME : S_EXT_AFTER_VAL;
            else
                return fail(d, CU_CHUNKED_E_EXTENSION, i, consumed);
            break;
        case S_EXT_POST_NAME:
            if (c == '=')
                d->state = S_EXT_PRE_VAL;
            else if (c == ';')
                d->state = S_EXT_PRE_NAME;
            else if (c != ' ' && c != '\t')
                return fail(d, CU_CHUNKED_E_EXTENSION, i, consumed);
            break;
        case S_EXT_PRE_VAL:
            if (c == '"')
                d->state = S_EXT_QS;
            else if (tchar(c))
                d->state = S_EXT_TOKEN;
            else if (c != ' ' && c != '\t')
                return fail(d, CU_CHUNKED_E_EXTENSION, i, consumed);
            break;
        case S_EXT_AFTER_VAL:
            if (c == ';')
                d->state = S_EXT_PRE_NAME;
            else if (c != ' ' && c != '\t')
                return fail(d, CU_CHUNKED_E_EXTENSION, i, consumed);
            break;
        case S_EXT_QS:
            /* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
            if (c == '"')
                d->state = S_EXT_QS_END;
            else if (c == '\\')
                d->state = S_EXT_QP;
            else if (!(c == '\t' || (c >= 0x20 && c != 0x7f)))
                return fail(d, CU_CHUNKED_E_EXTENSION, i, consumed);
            break;
        case S_EXT_QP:
            if (!(c == '\t' || (c >= 0x20 && c != 0x7f)))
                return fail(d, CU_CHUNKED_E_EXTENSION, i, consumed);
            d->state = S_EXT_QS;
            break;
        case S_EXT_QS_END:
            if (c == ';')
                d->state = S_EXT_PRE_NAME;
            else if (c == '\r')
                d->state = S_SIZE_LF;
            else if (c == ' ' || c == '\t')
                d->state = S_EXT_AFTER_VAL;
            else
                return fail(d, CU_CHUNKED_E_EXTENSION, i, consumed);
            break;
        case S_SIZE_LF:
            if (c != '\n')
                return fail(d, CU_CHUNKED_E_SIZE, i, consumed);
            d->line_len = 0;
            d->state = d->remaining ? S_DATA : S_TRAILER_START;
            break;
        case S_DATA_CR:
            if (c != '\r')
                return fail(d, CU_CHUNKED_E_TERMINATOR, i, consumed);
            d->state = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (c != '\n')
                return fail(d, CU_CHUNKED_E_TERMINATOR, i, consumed);
            d->state = S_SIZE_START;
            break;
        case S_TRAILER_START:
            if (c == '\r') {
                d->state = S_FINAL_LF;
            } else if (tchar(c)) {
                d->cand = narrow(ALL_FORBIDDEN, 0, c);
                d->line_len = 1;
                d->state = S_TR_NAME;
            } else if (c == ' ' || c == '\t' || c == '\n' || c == ':') {
                return fail(d, CU_CHUNKED_E_TRAILER, i, consumed);
            } else {
                return fail(d, CU_CHUNKED_E_TRAILER_NAME, i, consumed);
            }
            break;
        case S_TR_NAME:
            if (tchar(c)) {
                d->cand = narrow(d->cand, d->line_len++, c);
            } else if (c == ':') {
                if (forbidden_match(d->cand, d->line_len))
                    return fail(d, CU_CHUNKED_E_TRAILER_NAME, i, consumed);
                d->state = S_TR_VALUE;
            } else if (c == '\r' || c == '\n') {
                return fail(d, CU_CHUNKED_E_TRAILER, i, consumed);
            } else {
                return fail(d, CU_CHUNKED_E_TRAILER_NAME, i, consumed);
            }
            break;
        case S_TR_VALUE:
            if (c == '\r')
                d->state = S_TR_LF;
            else if ((c < 0x20 && c != '\t') || c == 0x7f)
                return fail(d, CU_CHUNKED_E_TRAILER, i, consumed);
            break;
        case S_TR_LF:
            if (c != '\n')
                return fail(d, CU_CHUNKED_E_TRAILER, i, consumed);
            d->state = S_TRAILER_START;
            break;
        case S_FINAL_LF:
            if (c != '\n')
                return fail(d, CU_CHUNKED_E_TERMINATOR, i, consumed);
            d->state = S_DONE;
            *consumed = i;
            return CU_DONE;
        default: cu_assert(!"chunked decoder in an impossible state");
        }
    }
    *consumed = i;
    return CU_AGAIN;
}

size_t cu_chunked_header(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[2 * sizeof(size_t)];
    size_t k = 0, len = 0;

    do {
        tmp[k++] = hex[n & 15];
        n >>= 4;
    } while (n);
    while (k)
        out[len++] = tmp[--k];
    out[len++] = '\r';
    out[len++] = '\n';
    return len;
}
