"""Standard code systems and codes we emit or accept, each with where it was confirmed."""

from __future__ import annotations

from typing import Final

SNOMED: Final = "http://snomed.info/sct"
LOINC: Final = "http://loinc.org"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC: Final = "http://hl7.org/fhir/sid/ndc"
UCUM: Final = "http://unitsofmeasure.org"
# Security labels: HL7 v3 Confidentiality, R4 valueset-security-labels / v3-Confidentiality (hl7.org/fhir/R4/
# v3/Confidentiality/cs.html): R = restricted, V = very restricted. A Patient labelled with either is restricted.
V3_CONFIDENTIALITY: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
RESTRICTED: Final = ("R", "restricted")
RESTRICTED_CODES: Final = frozenset({"R", "V"})
# CPT system URI as given in R4 terminologies-systems.html ("http://www.ama-assn.org/go/cpt").
CPT: Final = "http://www.ama-assn.org/go/cpt"
V2_IDENTIFIER_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
# US Core CarePlan category (US Core 7.0.0 CodeSystem careplan-category; CLINICAL.md §1).
US_CORE_CAREPLAN_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
ASSESS_PLAN: Final = "assess-plan"

# v2-0203 "MR" Medical record number (HL7 v2 table 0203, R4 terminology.hl7.org).
MEDICAL_RECORD_NUMBER: Final = ("MR", "Medical record number")

# RxNorm (CLINICAL.md §1; RxNav): 6130 ketamine ingredient, 2201623 esketamine nasal spray (generic),
# 2201625 Spravato branded form.
RXNORM_KETAMINE: Final = "6130"
RXNORM_ESKETAMINE: Final = "2201623"
RXNORM_SPRAVATO: Final = "2201625"
# NDC esketamine kits 56 mg / 84 mg (CLINICAL.md §1; FDA NDC directory, labeler 50458 Janssen).
NDC_ESKETAMINE_KITS: Final = frozenset({"50458-028-02", "50458-028-03"})

# Routes, SNOMED CT (CLINICAL.md §1; R4 valueset-route-codes lists these as children of 284009009).
ROUTE_CODES: Final = {
    "intravenous": ("47625008", "Intravenous route"),
    "intramuscular": ("78421000", "Intramuscular route"),
    "intranasal": ("46713006", "Nasal route"),
    "sublingual": ("37839007", "Sublingual route"),
    "oral": ("26643006", "Oral route"),
}
# 255560000 "Intravenous" (qualifier value), the older code still sent, e.g. R4 example medadmin0305.
OLD_INTRAVENOUS: Final = "255560000"

# SNOMED CT 228557008 "Cognitive and behavioral therapy" (CLINICAL.md §1); 304891004 older CBT code, input only.
CBT: Final = ("228557008", "Cognitive and behavioral therapy")
CBT_OLD: Final = "304891004"
# CPT psychotherapy by time (CLINICAL.md §1; AMA CPT 2024 Professional, Psychiatry > Psychotherapy: descriptors
# "Psychotherapy, 30/45/60 minutes with patient", CPT time rule 90832 16-37 min, 90834 38-52 min, 90837 53+ min;
# CMS Billing and Coding article A57520 "Psychiatric Codes" lists the same codes and times). The AMA text is
# licensed: the descriptors were checked here through the CMS article and secondary coding references only.
CPT_PSYCHOTHERAPY: Final = (
    (37, "90832", "Psychotherapy, 30 minutes with patient"),
    (52, "90834", "Psychotherapy, 45 minutes with patient"),
    (None, "90837", "Psychotherapy, 60 minutes with patient"),
)
# CPT 90853 "Group psychotherapy (other than of a multiple-family group)" (CLINICAL.md §1 lists it beside the timed
# codes; AMA CPT 2024; CMS article A57520). It has no time in its descriptor, so it gives no nominal length.
CPT_GROUP_PSYCHOTHERAPY: Final = ("90853", "Group psychotherapy (other than of a multiple-family group)")
# CPT 90846/90847 family psychotherapy (without / with the patient present, 50 min; AMA CPT 2024) are NOT therapy
# visits of the programme: CLINICAL.md lists only individual (90832/90834/90837) and group (90853) psychotherapy,
# and 90846 is a session without the patient. Named here so the refusal can say so.
CPT_FAMILY_PSYCHOTHERAPY: Final = frozenset({"90846", "90847"})
# SNOMED CT 75516001 "Psychotherapy" and 18512000 "Individual psychotherapy" (CLINICAL.md §1): psychotherapy whose
# modality is not stated, like a CPT code.
PSYCHOTHERAPY: Final = ("75516001", "Psychotherapy")
INDIVIDUAL_PSYCHOTHERAPY: Final = ("18512000", "Individual psychotherapy")

# HCPCS (R4 terminologies-systems.html: http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets): G2082 / G2083,
# the esketamine (Spravato) treatment visit, up to 56 mg / more than 56 mg (CMS CY2020 Physician Fee Schedule final
# rule). verify: the system URI was not checked against terminology.hl7.org here.
HCPCS: Final = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
HCPCS_ESKETAMINE_VISIT: Final = frozenset({"G2082", "G2083"})

# SNOMED CT 18629005 "Administration of drug or medicament (procedure)": used as the drug-administration
# Procedure code in the German MII oncology IG and the ISiK ProcedureCategory value set ("Administration of
# medicine"). unverified: display checked against those IGs, not against the SNOMED CT browser.
ADMINISTRATION_OF_DRUG: Final = ("18629005", "Administration of drug or medicament")

# v3 ActCode encounter classes (R4 valueset-v3-ActEncounterCode): AMB ambulatory, VR virtual.
AMBULATORY: Final = ("AMB", "ambulatory")
VIRTUAL: Final = ("VR", "virtual")

# LOINC vital signs (CLINICAL.md §1; R4 vital-signs profiles, observation-vitalsigns.html).
BP_PANEL: Final = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC: Final = ("8480-6", "Systolic blood pressure")
DIASTOLIC: Final = ("8462-4", "Diastolic blood pressure")
HEART_RATE: Final = ("8867-4", "Heart rate")
SPO2: Final = ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
# 2708-6 is the R4 vital-signs oxygen saturation code; US Core pulse-ox requires it next to 59408-5.
SPO2_GENERIC: Final = ("2708-6", "Oxygen saturation in Arterial blood")
BODY_WEIGHT: Final = ("29463-7", "Body weight")
