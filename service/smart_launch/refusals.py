"""Why a launch is refused, in the words the page shows (the pages' one error translation renders it)."""

from __future__ import annotations

from service.errors import TandemError


class LaunchRefused(TandemError):
    """A launch or callback that cannot go on; nothing was signed in. The message says what to do."""

    status_code = 400
    title = "This launch from the EHR could not be accepted"
    # The registered EHR's origins, once the launch is known to come from it: its refusal page may be shown
    # inside that EHR's frame (it holds no patient data); empty (never framed) before that.
    frame_origins: tuple[str, ...] = ()


class LaunchForbidden(LaunchRefused):
    """The EHR said who the user is, but Tandem gives that user no role or does not know the patient."""

    status_code = 403


class LaunchPatientUnknown(LaunchRefused):
    status_code = 404
    title = "Patient not in Tandem's programme"
