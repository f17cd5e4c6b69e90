"""cunicorn._tls: the ssl_context hook's default factory, the checks that refuse what cunicorn cannot honour, and the getpeercert() dict, for py/tls.c."""
import ssl

def factory_for(conf):
    def default_ssl_context_factory():
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=conf.ca_certs)
        context.load_cert_chain(certfile=conf.certfile, keyfile=conf.keyfile)
        context.verify_mode = conf.cert_reqs
        if conf.ciphers:
            context.set_ciphers(conf.ciphers)
        context.set_alpn_protocols(['http/1.1'])
        return context
    return default_ssl_context_factory

def check(ctx):
    '''What cunicorn cannot honour exactly is refused, never ignored.'''
    if not isinstance(ctx, ssl.SSLContext):
        raise TypeError('ssl_context must return an ssl.SSLContext, not %s'
                        % type(ctx).__name__)
    if ctx.protocol == ssl.PROTOCOL_TLS_CLIENT:
        raise ValueError('ssl_context returned a client context (PROTOCOL_TLS_CLIENT); '
                         'a server needs ssl.PROTOCOL_TLS_SERVER')
    if ctx.sni_callback is not None:
        raise ValueError('sni_callback is not supported by cunicorn '
                         '(handshakes run in C, outside Python)')
    if getattr(ctx, 'keylog_filename', None):
        raise ValueError('keylog_filename is not supported by cunicorn')
    if getattr(ctx, '_msg_callback', None) is not None:
        raise ValueError('_msg_callback is not supported by cunicorn')
    return (int(ctx.verify_mode), int(ctx.options))

def _decode(der):
    '''The dict ssl.SSLSocket.getpeercert() gives, by the ssl module's own decoder.'''
    import os, _ssl
    fd = os.memfd_create('peercert', os.MFD_CLOEXEC)
    try:
        os.write(fd, ssl.DER_cert_to_PEM_cert(der).encode())
        return _ssl._test_decode_cert('/proc/self/fd/%d' % fd)
    finally:
        os.close(fd)

class TLSSocket:
    '''environ['gunicorn.socket'] of a TLS connection: what apps read of ssl.SSLSocket.'''
    __slots__ = ('_der', '_verified', '_cipher', '_version', '_alpn', '_dict')

    def __init__(self, der, verified, cipher, version, alpn):
        self._der, self._verified, self._cipher = der, verified, cipher
        self._version, self._alpn, self._dict = version, alpn, None

    def getpeercert(self, binary_form=False):
        if binary_form or self._der is None:
            return self._der
        if not self._verified:
            return {}  # as ssl: a certificate not asked for is not decoded
        if self._dict is None:
            self._dict = _decode(self._der)
        return self._dict

    def cipher(self):
        return self._cipher

    def version(self):
        return self._version

    def selected_alpn_protocol(self):
        return self._alpn

    def __repr__(self):
        return '<cunicorn TLSSocket %s %s>' % (self._version, self._cipher[0])
