/* TLS fixtures for the server tests: a test CA, a server certificate for
 * 127.0.0.1 and localhost signed by it, a client certificate signed by it, and a
 * self-signed "rogue" client certificate. EC P-256, valid until 2126. Generated
 * once with openssl; test material only, never use it anywhere else. */
#ifndef VIGIL_TEST_TLS_FIXTURES_H
#define VIGIL_TEST_TLS_FIXTURES_H

static const char TLS_CA_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBhjCCAS2gAwIBAgIURXiMnvYPZhAwJklke0jX6pJt0r4wCgYIKoZIzj0EAwIw\n"
    "GDEWMBQGA1UEAwwNdmlnaWwgdGVzdCBDQTAgFw0yNjExMjcwMDI1NDVaGA8yMTI2\n"
    "MTEwMzAwMjU0NVowGDEWMBQGA1UEAwwNdmlnaWwgdGVzdCBDQTBZMBMGByqGSM49\n"
    "AgEGCCqGSM49AwEHA0IABDzodITIG9qj11ocL/6+bj94gUt37INIavZcPScXwk5v\n"
    "Elu0cniZ5NhQnfiXW66ztD09xpM3RvAVv7rC0iLQqeyjUzBRMB0GA1UdDgQWBBQO\n"
    "FeVVgWS2aRJqtzg+iH5xODicuDAfBgNVHSMEGDAWgBQOFeVVgWS2aRJqtzg+iH5x\n"
    "ODicuDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCICObQQrqTW/x\n"
    "NZF9myjaZNclWClg9wrM0QHILHS+a2N/AiAEA7MQa63TYZZ3+0KcxOE5PhZGdjQY\n"
    "Dy4q9pEeKTI+Ew==\n"
    "-----END CERTIFICATE-----\n";

static const char TLS_SERVER_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBpDCCAUmgAwIBAgIUUnkfP/hYcQL+dUDD8eRmtfC1uQcwCgYIKoZIzj0EAwIw\n"
    "GDEWMBQGA1UEAwwNdmlnaWwgdGVzdCBDQTAgFw0yNjExMjcwMDI1NDVaGA8yMTI2\n"
    "MTEwMzAwMjU0NVowFDESMBAGA1UEAwwJMTI3LjAuMC4xMFkwEwYHKoZIzj0CAQYI\n"
    "KoZIzj0DAQcDQgAEWmX3cHkpck86s/w9qXPTL309mUTUQWv7zX+KTMOVhk0PWZ7f\n"
    "lbrFqnfOm4RaJgLU0TA6VTJjYcXjf2Sn8+zAbKNzMHEwGgYDVR0RBBMwEYcEfwAA\n"
    "AYIJbG9jYWxob3N0MBMGA1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQWBBQcd7rK\n"
    "9gajusw3dVB3FPg0lCUE5zAfBgNVHSMEGDAWgBQOFeVVgWS2aRJqtzg+iH5xODic\n"
    "uDAKBggqhkjOPQQDAgNJADBGAiEAjKWOgoDsOKbY0TXe7fZXSXe8Dmd1OVRFHuW8\n"
    "wwx5nVYCIQDPcH3up0qH7gQlZK+kC/eynippAzX0dpsp/vrxTGlWYw==\n"
    "-----END CERTIFICATE-----\n";

static const char TLS_SERVER_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpu6l1HvaGMJP5nPn\n"
    "kMOgBtpRIPJtW9R1hwxsF2bk2L6hRANCAARaZfdweSlyTzqz/D2pc9MvfT2ZRNRB\n"
    "a/vNf4pMw5WGTQ9Znt+VusWqd86bhFomAtTRMDpVMmNhxeN/ZKfz7MBs\n"
    "-----END PRIVATE KEY-----\n";

static const char TLS_CLIENT_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBjzCCATWgAwIBAgIUUnkfP/hYcQL+dUDD8eRmtfC1uQgwCgYIKoZIzj0EAwIw\n"
    "GDEWMBQGA1UEAwwNdmlnaWwgdGVzdCBDQTAgFw0yNjExMjcwMDI1NDZaGA8yMTI2\n"
    "MTEwMzAwMjU0NlowHDEaMBgGA1UEAwwRdmlnaWwgdGVzdCBjbGllbnQwWTATBgcq\n"
    "hkjOPQIBBggqhkjOPQMBBwNCAARj10STz/RfXlg8KF6EtRniCfmBNBRhFFPucmyL\n"
    "OKGkbERX34Z0RxaitzXi9AQHsoxqI3Bl3hhQ0I89X71vRVWQo1cwVTATBgNVHSUE\n"
    "DDAKBggrBgEFBQcDAjAdBgNVHQ4EFgQUPNGEKoj647JnCoQFa1yZDCnuOf0wHwYD\n"
    "VR0jBBgwFoAUDhXlVYFktmkSarc4Poh+cTg4nLgwCgYIKoZIzj0EAwIDSAAwRQIg\n"
    "YN0ZFz1ZPT+aqt1F5VQplZi09MaMJqPemJLxGBB16goCIQCsgsNsJBIJ4N5hu8Yb\n"
    "MzkcBPx9t8lu9MHEQooOUOJIEQ==\n"
    "-----END CERTIFICATE-----\n";

static const char TLS_CLIENT_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRFYra6I9AuPdIjVG\n"
    "CcNXma2cxi54IXH16dcpBouCGi2hRANCAARj10STz/RfXlg8KF6EtRniCfmBNBRh\n"
    "FFPucmyLOKGkbERX34Z0RxaitzXi9AQHsoxqI3Bl3hhQ0I89X71vRVWQ\n"
    "-----END PRIVATE KEY-----\n";

static const char TLS_ROGUE_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBdzCCAR2gAwIBAgIUPCfzkXOueisbjtV70F0C13nWIiowCgYIKoZIzj0EAwIw\n"
    "EDEOMAwGA1UEAwwFcm9ndWUwIBcNMjYxMTI3MDAyNTQ2WhgPMjEyNjExMDMwMDI1\n"
    "NDZaMBAxDjAMBgNVBAMMBXJvZ3VlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
    "CdpfonoNrdoivDN1g1yQNZBSrQ3vSt3LSALFSXk2Nxc5D+FVDxj+63gRFc4N3k+i\n"
    "nFFEd0GZQ7bFFFZFelsrlKNTMFEwHQYDVR0OBBYEFBprm0s5nH4g9Pc5StafolRP\n"
    "mmi5MB8GA1UdIwQYMBaAFBprm0s5nH4g9Pc5StafolRPmmi5MA8GA1UdEwEB/wQF\n"
    "MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAPTFK+SZj58uyKLxXSOEM46RXQK6jMNq\n"
    "fOvVlzasWnzFAiAqfphdkJIHaqMPwkPak67XxEgs6bsxpJkp9J1+HsrMcw==\n"
    "-----END CERTIFICATE-----\n";

static const char TLS_ROGUE_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNG7dHp1ZpXlT1DLR\n"
    "KDtXe793Lm8GrfpiQcIZP+wbUY2hRANCAAQJ2l+ieg2t2iK8M3WDXJA1kFKtDe9K\n"
    "3ctIAsVJeTY3FzkP4VUPGP7reBEVzg3eT6KcUUR3QZlDtsUUVkV6WyuU\n"
    "-----END PRIVATE KEY-----\n";

#endif
