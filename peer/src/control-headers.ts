/**
 * Response headers of the ControlService beside its messages (the daemon sets them, the CLI reads
 * them): kept apart from both so the CLI reads the name without loading the daemon's code.
 */

/** On a `get` stream, when several contents carry the name asked for: which was taken and why (URI-encoded). */
export const CHOICE_HEADER = 'peerdir-choice'
