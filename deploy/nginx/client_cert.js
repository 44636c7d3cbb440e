// RFC 9440 Client-Cert for the broker: the verified client certificate as a structured-field
// byte sequence, ":" base64(DER) ":". nginx gives the certificate as PEM; its body is that
// base64 once the armour lines and line breaks are gone. Empty when no certificate was sent,
// and nginx then sends no header at all.
function header(r) {
    var pem = r.variables.ssl_client_raw_cert;
    if (!pem || r.variables.ssl_client_verify !== 'SUCCESS') {
        return '';
    }
    var body = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
    return ':' + body + ':';
}

export default {header};
