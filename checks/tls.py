"""Encryption in transit: the TLS versions endpoints accept and the certificates they present."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from audit.errors import Unavailable
from audit.facts.tls import (
    NO_CERTIFICATE,
    PROTOCOL_NAMES,
    CertificateFacts,
    EndpointScan,
    TlsFacts,
    tls_facts,
)
from audit.messages import Text, english, listed, says
from audit.registry import (
    Finding,
    Params,
    check,
    could_not_tell,
    failed,
    not_applicable,
    passed,
)
from audit.vocabulary import Reason, Role

TLS_ROLES = (Role.WEB, Role.DB, Role.PACS, Role.FHIR, Role.HL7)
# One fact, one finding: a service that speaks no TLS at all is the failure of the check that
# judges its plaintext, not a second and third failure here.
PLAINTEXT_JUDGED_BY = {"postgresql": "db.plaintext_accepted", "postgres": "db.plaintext_accepted",
                       "pgsql": "db.plaintext_accepted", "redis": "db.plaintext_accepted",
                       "mysql": "db.plaintext_accepted", "mariadb": "db.plaintext_accepted",
                       "hl7": "hl7.mllp_plaintext", "mllp": "hl7.mllp_plaintext"}
ProtocolName = Literal["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


def _judge(facts: TlsFacts, problems_of: Callable[[EndpointScan], list[Text] | Unavailable],
           describe: Callable[[EndpointScan], dict[str, Any]], expected: Any,
           what: Text) -> Finding:
    """Fail on any endpoint with problems; could not tell when some could not be judged and
    none failed.

    An endpoint that could not be scanned (or that `problems_of` could not judge) never
    counts as passing: with no failure elsewhere the result is an error naming it.
    """
    observed: list[dict[str, Any]] = []
    failing: list[Text] = []
    unscanned: list[Unavailable] = []
    elsewhere: list[Text] = []
    for scan in facts.endpoints:
        label = scan.endpoint.label
        judge = PLAINTEXT_JUDGED_BY.get(scan.endpoint.kind)
        if not scan.tls_offered and scan.unavailable is None and judge:
            elsewhere.append(says("{endpoint}: no TLS offered (judged by {check})",
                                  endpoint=label, check=judge))
            observed.append({"endpoint": label, "tls_offered": False, "judged_by": judge,
                             **({"refusal": scan.refusal} if scan.refusal else {})})
            continue
        problems = scan.unavailable or (problems_of(scan) if scan.tls_offered
                                        else [says("does not offer TLS")])
        if isinstance(problems, Unavailable):
            unscanned.append(problems)
            observed.append({"endpoint": label, "error": problems.message})
            continue
        observed.append({"endpoint": label, **describe(scan),
                         "problems": [english(problem) for problem in problems],
                         **({"refusal": scan.refusal} if scan.refusal else {})})
        failing += [says("{endpoint}: {problem}", endpoint=label, problem=problem)
                    for problem in problems]
    if failing:
        return failed(listed(failing), observed=observed, expected=expected,
                      scanned_at=facts.scanned_at.isoformat())
    if elsewhere and len(elsewhere) == len(observed):
        return not_applicable(listed(elsewhere), observed=observed)
    if unscanned:
        return could_not_tell(Unavailable(unscanned[0].reason,
                                          listed([item.text for item in unscanned])),
                              observed=observed, scanned_at=facts.scanned_at.isoformat())
    count = len(observed) - len(elsewhere)
    summary = says("{what} on {count} endpoint(s); {elsewhere}", what=what, count=count,
                   elsewhere=listed(elsewhere)) if elsewhere \
        else says("{what} on {count} endpoint(s)", what=what, count=count)
    return passed(summary, observed=observed, expected=expected,
                  scanned_at=facts.scanned_at.isoformat())


class ProtocolVersionParams(Params):
    """The oldest protocol version an endpoint may accept."""

    minimum: ProtocolName = "TLSv1.2"


@check(id="tls.protocol_versions", title="TLS endpoints accept only current protocol versions",
       applies_to=TLS_ROLES, probe=tls_facts, params=ProtocolVersionParams)
def protocol_versions(facts: TlsFacts, p: ProtocolVersionParams) -> Finding:
    """SSLv2, SSLv3, TLS 1.0 and TLS 1.1 have known attacks (POODLE, BEAST, weak hashes) and
    are deprecated (RFC 8996): a server that still accepts them lets an attacker in the middle
    downgrade patients' and staff's sessions. Configure every web, database, PACS and interface
    endpoint for TLS 1.2 and 1.3 only (nginx `ssl_protocols TLSv1.2 TLSv1.3;`, PostgreSQL
    `ssl_min_protocol_version = 'TLSv1.2'`)."""
    too_old = set(PROTOCOL_NAMES[:PROTOCOL_NAMES.index(p.minimum)])

    def problems(scan: EndpointScan) -> list[Text] | Unavailable:
        old = [name for name in scan.accepted if name in too_old]
        if old:
            return [says("accepts {versions}", versions=", ".join(old))]
        untested = {name: error for name, error in scan.errors.items() if name in too_old}
        if untested:
            return Unavailable(Reason.UNREACHABLE, says(
                "{endpoint}: could not test {errors}", endpoint=scan.endpoint.label,
                errors="; ".join(f"{k}: {v}" for k, v in untested.items())))
        return [] if scan.accepted else [says("accepted no protocol version")]

    return _judge(facts, problems, lambda scan: {"accepted": scan.accepted},
                  expected=f"only {p.minimum} or newer",
                  what=says("only {minimum} or newer", minimum=p.minimum))


class CertificateParams(Params):
    """What a server certificate must be."""

    min_rsa_bits: int = Field(default=2048, ge=1024, le=16384)
    min_ec_bits: int = Field(default=256, ge=160, le=571)
    allow_self_signed: bool = False
    min_days_left: int = Field(default=0, ge=0, le=365)


def certificate_problems(certificate: CertificateFacts | None, p: CertificateParams,
                         scanned_at: dt.datetime) -> list[Text]:
    """What is wrong with one endpoint's certificate under the parameters."""
    if certificate is None:
        return [says("presented no certificate")]
    problems: list[Text] = []
    days_left = (certificate.not_after - scanned_at).days
    if certificate.not_before > scanned_at:
        problems.append(says("not valid before {date}",
                             date=certificate.not_before.date().isoformat()))
    if days_left < 0:
        problems.append(says("expired on {date}", date=certificate.not_after.date().isoformat()))
    elif days_left < p.min_days_left:
        problems.append(says("expires in {days} days", days=days_left))
    if not certificate.matches_host:
        problems.append(says("does not name the host in its subject alternative names"))
    if certificate.self_signed and not p.allow_self_signed:
        problems.append(says("self-signed"))
    elif not certificate.trusted and not certificate.self_signed:
        problems.append(says("does not chain to the trust anchors: {error}",
                             error=str(certificate.trust_error)))
    is_ec = certificate.key_type.startswith("EC")
    minimum = p.min_ec_bits if is_ec else p.min_rsa_bits
    if (is_ec or certificate.key_type in ("RSA", "DSA")) and certificate.key_bits < minimum:
        problems.append(says("{key_type} key of {bits} bits (minimum {minimum})",
                             key_type=certificate.key_type, bits=certificate.key_bits,
                             minimum=minimum))
    return problems


def _certificate_evidence(scan: EndpointScan) -> dict[str, Any]:
    certificate = scan.certificate
    if certificate is None:
        return {}
    return {"subject": certificate.subject, "issuer": certificate.issuer,
            "not_before": certificate.not_before.isoformat(),
            "not_after": certificate.not_after.isoformat(),
            "self_signed": certificate.self_signed,
            "key": f"{certificate.key_type} {certificate.key_bits} bits",
            "dns_names": list(certificate.dns_names),
            "ip_addresses": list(certificate.ip_addresses),
            "trusted": certificate.trusted, "trust_error": certificate.trust_error,
            "trust_store": certificate.trust_store}


@check(id="tls.certificate", title="TLS certificates are valid, trusted and strong",
       applies_to=TLS_ROLES, probe=tls_facts, params=CertificateParams)
def certificate(facts: TlsFacts, p: CertificateParams) -> Finding:
    """A certificate that is expired, self-signed, issued for another name or not chained to
    the organisation's trust anchors trains users and client software to accept any
    certificate, which is exactly what an attacker in the middle presents. Issue
    certificates from the organisation's CA (or a public one) naming every host name and
    address clients use, with RSA keys of 2048 bits or more (or EC P-256), and renew them
    before they expire."""
    def problems(scan: EndpointScan) -> list[Text] | Unavailable:
        if "certificate" in scan.errors:
            error = scan.errors["certificate"]
            return Unavailable(Reason.UNREACHABLE, says(
                "{endpoint}: certificate not read: no certificate received",
                endpoint=scan.endpoint.label) if error == NO_CERTIFICATE else says(
                "{endpoint}: certificate not read: {error}", endpoint=scan.endpoint.label,
                error=error))
        return certificate_problems(scan.certificate, p, facts.scanned_at)

    return _judge(facts, problems,
                  _certificate_evidence,
                  expected={"trusted": True, "self_signed_allowed": p.allow_self_signed,
                            "min_rsa_bits": p.min_rsa_bits, "min_ec_bits": p.min_ec_bits,
                            "min_days_left": p.min_days_left},
                  what=says("valid, trusted certificate"))
